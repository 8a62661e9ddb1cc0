"""customs-hub: signed customs messages between administrations over mTLS gRPC."""

__version__ = "0.1.0"
