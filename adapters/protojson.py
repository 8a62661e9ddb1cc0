"""The ``proto-json`` format: the canonical protobuf JSON mapping of one business message.

A document is a JSON object with exactly one key naming its kind, as in ``SubmitRequest``'s
``document`` field: ``{"goodsDeclaration": {...}}``, ``{"aeoStatus": {...}}``,
``{"controlResult": {...}}``, ``{"response": {...}}`` or ``{"movementEvent": {...}}``. Errors
name the line and column (JSON syntax) or the field (unknown or mistyped fields).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from google.protobuf import json_format
from google.protobuf.message import Message

from hub.core.errors import TranslationError
from hub.pb.customs_hub.v1 import service_pb2

DOCUMENT_FIELDS = (
    "goods_declaration",
    "aeo_status",
    "control_result",
    "response",
    "movement_event",
)
KINDS = "goodsDeclaration, aeoStatus, controlResult, response, movementEvent"
# The keys a document may have: each field's JSON name and its proto name (ParseDict takes both).
_DOCUMENT_KEYS = frozenset(
    name
    for field in DOCUMENT_FIELDS
    for name in (field, service_pb2.SubmitRequest.DESCRIPTOR.fields_by_name[field].json_name)
)
# Nesting of any real document is far below this; it bounds the JSON parser's recursion.
MAX_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class ProtoJson:
    format_id: str = "proto-json"
    media_type: str = "application/json"
    directions: frozenset[str] = frozenset({"decode", "encode"})
    description: str = "protobuf JSON (the canonical JSON mapping), one document per file"
    max_bytes: int = MAX_BYTES

    def light(self, data: bytes) -> bool:
        """At most 2 KiB: an AEO status (300 bytes) takes 25 us, and 2 KiB of empty objects
        about 3 ms (json_format is Python)."""
        return len(data) <= 2 * 1024

    def decode(self, data: bytes, source: str = "document") -> Message:
        if len(data) > self.max_bytes:
            raise TranslationError(
                f"{source} is {len(data)} bytes; the limit is {self.max_bytes}",
                reason="limit-exceeded",
            )
        try:
            value = json.loads(data)
        except json.JSONDecodeError as exc:
            raise TranslationError(
                f"{source} is not valid JSON: {exc.msg}",
                reason="not-well-formed",
                line=exc.lineno,
                column=exc.colno,
            ) from None
        except (UnicodeDecodeError, RecursionError):
            raise TranslationError(
                f"{source} is not UTF-8 JSON", reason="not-well-formed"
            ) from None
        request = service_pb2.SubmitRequest()
        if not isinstance(value, dict) or len(value) != 1:
            raise TranslationError(
                f"{source} must be an object with exactly one of {KINDS}",
                reason="unsupported-document",
                line=_start_line(data),
            )
        [key] = value
        if key not in _DOCUMENT_KEYS:
            raise TranslationError(
                f"{source} must name one of {KINDS}; it names something else",
                reason="unsupported-document",
                line=_start_line(data),
            )
        try:
            json_format.ParseDict(value, request)
        except json_format.ParseError as exc:
            raise TranslationError(f"{source}: {exc}", reason="schema-invalid") from None
        which = request.WhichOneof("document")
        if which not in DOCUMENT_FIELDS:
            raise TranslationError(
                f"{source} must name one of {KINDS}",
                reason="unsupported-document",
                line=_start_line(data),
            )
        document: Message = getattr(request, which)
        return document

    def encode(self, message: Message) -> bytes:
        request = service_pb2.SubmitRequest()
        for name in DOCUMENT_FIELDS:
            if request.DESCRIPTOR.fields_by_name[name].message_type is message.DESCRIPTOR:
                getattr(request, name).CopyFrom(message)
                text = json_format.MessageToJson(request, indent=2, sort_keys=False)
                return (text + "\n").encode()
        raise TranslationError(
            f"{message.DESCRIPTOR.full_name} is not a business message",
            reason="unsupported-document",
        )


def _start_line(data: bytes) -> int:
    """The line a JSON document's value starts on (after a BOM and blank lines): where a
    refusal of the document as a whole points, as the root element's line does for XML."""
    body = data.removeprefix(b"\xef\xbb\xbf")
    start = len(body) - len(body.lstrip(b" \t\r\n"))
    return body.count(b"\n", 0, start) + 1
