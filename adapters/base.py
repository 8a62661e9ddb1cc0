"""What a translator is: the protocol every format implements, ours and plugins', and the
helpers that call one safely. Translators import this module, never the registry
(adapters/formats.py), which imports them.

A translator has a ``format_id``, a ``media_type``, the ``directions`` it supports ("decode":
document to business message, "encode": the other way) and a one-line ``description``.

Some formats hold many documents in one file (an AEO list as CSV, an EDIFACT interchange of
several messages). Their translators also offer ``decode_all(data, source) -> list[Item]``,
one item per document with its line, so that one bad row is reported without refusing the good
ones, and ``encode_all(messages) -> bytes``. ``decode_all``/``encode_all`` below work for every
translator: a single-document format gives one item. A translator may also offer
``sniff(head: bytes) -> bool`` so that detection recognises its documents, and
``light(data: bytes) -> bool``: whether it translates that document in a few milliseconds at
worst, whatever its shape (a cheap test of size and counts, not a parse); the hub then
translates a domestic document on its event loop rather than hand it to a worker thread,
which costs more than such a document (``is_light`` below; no when not said).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from google.protobuf.message import Message

from hub.core.errors import HubError, TranslationError
from hub.core.limits import XmlLimits

log = logging.getLogger("customs_hub.formats")

DECODE, ENCODE = "decode", "encode"


class Translator(Protocol):
    @property
    def format_id(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    @property
    def directions(self) -> frozenset[str]: ...

    @property
    def description(self) -> str: ...

    def decode(self, data: bytes, source: str = "document") -> Message: ...

    def encode(self, message: Message) -> bytes: ...


Factory = Callable[[XmlLimits], Translator]


@dataclass(frozen=True)
class Item:
    """One document read from a file of one or more: its message, or why it was refused.
    ``line`` is where the document starts in the file (1-based), when the format has lines."""

    message: Message | None
    error: TranslationError | None = None
    line: int | None = None


T = TypeVar("T")


def guarded(format_id: str, work: Callable[[], T]) -> T:
    """Run a translator: its own errors pass, anything else it raises (a bug, a plugin's or
    ours) becomes a TranslationError, so hostile input is refused with a reason, never with
    an internal error."""
    try:
        return work()
    except HubError:
        raise
    except Exception as exc:  # noqa: BLE001 - this is the boundary around translator code
        log.error("format %s failed on a document: %s: %s", format_id, type(exc).__name__, exc)
        raise TranslationError(
            f"the {format_id} translator could not read or write this document "
            f"({type(exc).__name__})",
            reason="translation-failed",
        ) from None


def decode_all(translator: Translator, data: bytes, source: str = "document") -> list[Item]:
    """Every document in ``data``. A file that cannot be read at all raises TranslationError;
    a multi-document format reports each bad document as an item with its error instead."""
    many = getattr(translator, "decode_all", None)
    if many is not None:
        items: list[Item] = guarded(translator.format_id, lambda: many(data, source))
        return items
    return [Item(guarded(translator.format_id, lambda: translator.decode(data, source)))]


def encode_all(translator: Translator, messages: Sequence[Message]) -> bytes:
    """The messages as one file. A single-document format takes exactly one."""
    many = getattr(translator, "encode_all", None)
    if many is not None:
        output: bytes = guarded(translator.format_id, lambda: many(messages))
        return output
    if len(messages) != 1:
        raise TranslationError(
            f"format {translator.format_id!r} holds one document per file; {len(messages)} given",
            reason="unsupported-document",
        )
    return guarded(translator.format_id, lambda: translator.encode(messages[0]))


def is_light(translator: Translator, data: bytes) -> bool:
    """Whether ``translator`` says ``data`` is cheap enough for the event loop (``light``)."""
    light = getattr(translator, "light", None)
    if light is None:
        return False
    try:
        return light(data) is True
    except Exception:  # noqa: BLE001 - a plugin's faulty test only sends work to a thread
        return False
