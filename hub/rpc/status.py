"""The hub's errors as gRPC statuses: the one place a ``Status`` becomes a ``grpc.StatusCode``."""

from __future__ import annotations

import grpc

from hub.core.errors import HubError, Status

_CODES = {status: grpc.StatusCode[status.name] for status in Status}


def code_of(error: HubError) -> grpc.StatusCode:
    """The gRPC status code ``error`` is answered with."""
    return _CODES[error.status]
