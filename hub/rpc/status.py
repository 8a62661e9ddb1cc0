"""The hub's errors as gRPC statuses: the one place a ``Status`` becomes a ``grpc.StatusCode``."""

from __future__ import annotations

import grpc

from hub.core.errors import REASON_KEY, HubError, Status, TranslationError

RECEIPT_KEY = "customs-hub-receipt-bin"
LINE_KEY = "customs-hub-line"
COLUMN_KEY = "customs-hub-column"
PATH_KEY = "customs-hub-path"
POINTER_KEY = "customs-hub-wco-pointer"

_CODES = {status: grpc.StatusCode[status.name] for status in Status}


def code_of(error: HubError) -> grpc.StatusCode:
    """The gRPC status code ``error`` is answered with."""
    return _CODES[error.status]


async def abort(
    context: grpc.aio.ServicerContext, error: HubError, receipt: bytes | None = None
) -> None:
    metadata: list[tuple[str, str | bytes]] = [(REASON_KEY, error.reason)]
    details = error.message
    if receipt is not None:
        metadata.append((RECEIPT_KEY, receipt))
    if isinstance(error, TranslationError):
        # where in the document: machine-readable keys, and the same in the human sentence
        for key, value in (
            (LINE_KEY, error.line),
            (COLUMN_KEY, error.column),
            (PATH_KEY, error.path),
            (POINTER_KEY, error.pointer),
        ):
            if value:
                metadata.append((key, str(value)))
        if error.location():
            details = f"{details} [{error.location()}]"
    await context.abort(code_of(error), details, trailing_metadata=tuple(metadata))
