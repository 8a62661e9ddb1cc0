"""The gRPC layer: what turns the hub's values and errors into calls, statuses and metadata."""
