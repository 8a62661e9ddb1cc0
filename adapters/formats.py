"""The registry of document formats the hub translates through its canonical protobuf.

Each format is a translator with a ``format_id``, a ``media_type`` and ``decode``/``encode``
(bytes <-> business message). Issue 6 moves discovery to Python entry points; the interface
stays this one.
"""

from __future__ import annotations

from typing import Protocol

from google.protobuf.message import Message

from adapters.protojson import ProtoJson
from adapters.wco.translator import WcoXml
from adapters.xmlsafe import XmlLimits
from hub.errors import TranslationError


class Translator(Protocol):
    @property
    def format_id(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    def decode(self, data: bytes, source: str = "document") -> Message: ...

    def encode(self, message: Message) -> bytes: ...


def registry(limits: XmlLimits | None = None) -> dict[str, Translator]:
    xml_limits = limits or XmlLimits()
    translators: list[Translator] = [WcoXml(xml_limits), ProtoJson(max_bytes=xml_limits.max_bytes)]
    return {t.format_id: t for t in translators}


def detect(data: bytes) -> str:
    """Guess a document's format from its first significant byte."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: only XML comes this way
        return "wco-xml"
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return "wco-xml"
    if head == b"{":
        return "proto-json"
    raise TranslationError(
        "cannot tell the document's format (neither XML nor JSON); name it with --from",
        reason="unsupported-format",
    )


def translator_for(format_id: str, limits: XmlLimits | None = None) -> Translator:
    translators = registry(limits)
    try:
        return translators[format_id]
    except KeyError:
        raise TranslationError(
            f"format {format_id!r} is not registered; formats are {', '.join(sorted(translators))}",
            reason="unsupported-format",
        ) from None
