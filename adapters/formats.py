"""The registry of document formats the hub translates through its canonical protobuf.

Each format is a translator (what one is, and the helpers that call one safely, are in
adapters/base.py). Translators are found through the Python entry point group
``customs_hub.formats``: each entry names a factory ``(limits: XmlLimits) -> Translator`` under
the translator's format id, so a new partner format is a package that declares one, not a
change to the hub. The hub's own formats are declared the same way in pyproject.toml, and are
also known without package metadata (running from a source tree).

A hub's own code lists (hub.toml ``[code_lists]``, docs/formats/code-lists.md) reach the
translators that use them without changing that factory: a translator that has a method
``with_code_lists(code_lists)`` is replaced by what it returns; others are left as made.

What it must never do: let a plugin replace one of the hub's own formats, or register a
translator under an id other than its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import entry_points
from typing import TypeVar

from google.protobuf.message import Message

from adapters.base import (
    DECODE,
    ENCODE,
    Factory,
    Item,
    Translator,
    decode_all,
    encode_all,
    guarded,
    is_light,
)
from adapters.protojson import ProtoJson
from adapters.wco.translator import WcoXml
from hub.core.codelists import NO_CODE_LISTS, CodeLists
from hub.core.errors import ConfigError, HubError, TranslationError
from hub.core.limits import XmlLimits

# What plugins import from here: what a translator is (adapters/base.py) and the error it raises
# (hub/core/errors.py, hub/errors.py before issue 15), so a plugin needs no path inside hub/.
__all__ = [
    "DECODE",
    "ENCODE",
    "Factory",
    "Item",
    "TranslationError",
    "Translator",
    "Translators",
    "decode_all",
    "detect",
    "discovered",
    "encode_all",
    "guarded",
    "is_light",
    "registry",
    "translator_for",
]

log = logging.getLogger("customs_hub.formats")
T = TypeVar("T")

GROUP = "customs_hub.formats"


def wco_xml(limits: XmlLimits) -> Translator:
    return WcoXml(limits)


def proto_json(limits: XmlLimits) -> Translator:
    return ProtoJson(max_bytes=limits.max_bytes)


# Imported when first asked for: these modules use this one's helpers.
def aeo_csv(limits: XmlLimits) -> Translator:
    from adapters.aeocsv import aeo_csv as make

    return make(limits)


def ncts_p6(limits: XmlLimits) -> Translator:
    from adapters.ncts import ncts_p6 as make

    return make(limits)


def edifact(limits: XmlLimits) -> Translator:
    from adapters.edifact import edifact as make

    return make(limits)


def cds_movement(limits: XmlLimits) -> Translator:
    from adapters.movement import cds_movement as make

    return make(limits)


BUILTIN: Mapping[str, Factory] = {
    "wco-xml": wco_xml,
    "proto-json": proto_json,
    "aeo-csv": aeo_csv,
    "ncts-p6": ncts_p6,
    "edifact": edifact,
    "cds-movement": cds_movement,
}


@dataclass(frozen=True)
class Registered:
    format_id: str
    factory: Factory
    source: str  # the entry point's value, e.g. "adapters.formats:wco_xml"


@lru_cache(maxsize=1)
def discovered() -> tuple[Registered, ...]:
    """The hub's own formats and every plugin's, loaded once per process. A plugin that fails
    to load, or claims one of the hub's own ids, is refused with a ConfigError naming it."""
    found = {
        name: Registered(name, factory, f"{factory.__module__}:{factory.__name__}")
        for name, factory in BUILTIN.items()
    }
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        if point.name in BUILTIN:
            if point.value != found[point.name].source:
                raise ConfigError(
                    f"format plugin {point.value} claims the hub's own format id {point.name!r}",
                    reason="format-plugin-invalid",
                )
            continue
        try:
            factory = point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of a plugin is reported
            raise ConfigError(
                f"format plugin {point.name} ({point.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}",
                reason="format-plugin-invalid",
            ) from None
        if not callable(factory):
            raise ConfigError(
                f"format plugin {point.name} ({point.value}) is not a translator factory",
                reason="format-plugin-invalid",
            )
        found[point.name] = Registered(point.name, factory, point.value)
    return tuple(found[name] for name in sorted(found))


def registry(
    limits: XmlLimits | None = None, code_lists: CodeLists = NO_CODE_LISTS
) -> dict[str, Translator]:
    """Every registered format's translator, made with ``limits`` and given ``code_lists``
    where it takes them (``with_code_lists``)."""
    xml_limits = limits or XmlLimits()
    translators: dict[str, Translator] = {}
    for entry in discovered():
        translator = entry.factory(xml_limits)
        with_code_lists = getattr(translator, "with_code_lists", None)
        if callable(with_code_lists):
            translator = with_code_lists(code_lists)
        if translator.format_id != entry.format_id:
            raise ConfigError(
                f"format plugin {entry.source} is registered as {entry.format_id!r} but its "
                f"translator says {translator.format_id!r}",
                reason="format-plugin-invalid",
            )
        translators[entry.format_id] = translator
    return translators


SNIFF_BYTES = 4096


def detect(data: bytes, translators: Mapping[str, Translator] | None = None) -> str:
    """Guess a document's format: a translator that recognises the first bytes (``sniff``)
    wins, the hub's own before plugins (a plugin cannot take over their documents); otherwise
    XML is taken as WCO DM and an object as protobuf JSON."""
    head = data[:SNIFF_BYTES]
    for format_id, translator in sorted(
        (translators if translators is not None else registry()).items(),
        key=lambda item: (item[0] not in BUILTIN, item[0]),
    ):
        sniff = getattr(translator, "sniff", None)
        if sniff is None:
            continue
        try:
            recognised = bool(sniff(head))
        except Exception:  # noqa: BLE001 - a plugin's faulty sniffer only fails to recognise
            log.error("format %s failed to sniff a document", format_id)
            continue
        if recognised:
            return format_id
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16: only XML comes this way
        return "wco-xml"
    first = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if first == b"<":
        return "wco-xml"
    if first == b"{":
        return "proto-json"
    raise TranslationError(
        "cannot tell the document's format (no registered format recognises it); name it "
        "with --from",
        reason="unsupported-format",
    )


def pick(
    translators: Mapping[str, Translator], format_id: str, direction: str | None
) -> Translator:
    """The translator registered as ``format_id``; with ``direction``, one that supports it."""
    translator = translators.get(format_id)
    if translator is None:
        raise TranslationError(
            f"format {format_id!r} is not registered; formats are {', '.join(sorted(translators))}",
            reason="unsupported-format",
        )
    if direction is not None and direction not in translator.directions:
        raise TranslationError(
            f"format {format_id!r} can only {' and '.join(sorted(translator.directions))}; "
            f"it cannot {direction}",
            reason="unsupported-direction",
        )
    return translator


# --- in a process of its own (hub/app/translation.py) ------------------------------------------

# One registry per worker process, limits and code lists, built on its first document.
_isolated: dict[tuple[XmlLimits | None, CodeLists], Translators] = {}

# What comes back from the worker process: each document's line, message type and bytes (a
# protobuf message crosses a process boundary as its bytes), or its error.
Decoded = tuple[int | None, str, bytes, TranslationError | None]


def decode_isolated(
    limits: XmlLimits | None,
    format_id: str,
    data: bytes,
    source: str,
    many: bool,
    code_lists: CodeLists = NO_CODE_LISTS,
) -> tuple[str, list[Decoded]]:
    """The documents of ``data`` (one, or with ``many`` every one of a file) as the
    translation worker process returns them: the format (detected where ``format_id`` is
    empty) and each document as ``Decoded``. Raises TranslationError like ``decode``."""
    translators = _isolated.get((limits, code_lists))
    if translators is None:
        translators = _isolated[limits, code_lists] = Translators(limits, code_lists)
    found = format_id or detect(data, translators.formats)
    if many:
        items = decode_all(translators.reader(found), data, source)
    else:
        items = [Item(translators.decode(found, data))]
    return found, [
        (
            item.line,
            item.message.DESCRIPTOR.full_name if item.message is not None else "",
            item.message.SerializeToString() if item.message is not None else b"",
            item.error,
        )
        for item in items
    ]


class Translators:
    """The registered formats, built once with the hub's limits, for the services."""

    def __init__(
        self, limits: XmlLimits | None = None, code_lists: CodeLists = NO_CODE_LISTS
    ) -> None:
        self.limits = limits
        self.code_lists = code_lists  # hub.toml's [code_lists], for the translation process
        self.formats = registry(limits, code_lists)
        # told each translation's format, direction ("decode" or "encode") and seconds, when
        # the hub meters (hub/app/metrics.py); called on whichever thread translated
        self.observe: Callable[[str, str, float], None] | None = None

    def made_with(self, code_lists: CodeLists) -> dict[str, Translator]:
        """The formats as they would be with ``code_lists`` (a ConfigError where a list cannot
        be used, e.g. one replacing a shipped list); ``use`` puts them in place."""
        return registry(self.limits, code_lists)

    def use(self, code_lists: CodeLists, formats: dict[str, Translator]) -> None:
        """Swap in formats made with other code lists (a reload): a call reads ``formats``
        once, so it translates with the old lists or the new, and the translation process
        builds its registry afresh for the new lists (``decode_isolated``)."""
        self.formats = formats
        self.code_lists = code_lists

    def reader(self, format_id: str) -> Translator:
        """The translator that reads ``format_id``."""
        return pick(self.formats, format_id, DECODE)

    def decode(self, format_id: str, content: bytes) -> Message:
        """One business message from a document; an empty ``format_id`` is detected."""
        translator = self.reader(format_id or detect(content, self.formats))
        source = f"{translator.format_id} document"
        return self.timed(translator.format_id, DECODE, lambda: translator.decode(content, source))

    def timed(self, format_id: str, direction: str, work: Callable[[], T]) -> T:
        """``work`` (guarded), its time told to ``observe`` if anyone listens."""
        observe = self.observe
        if observe is None:
            return guarded(format_id, work)
        began = time.perf_counter()
        try:
            return guarded(format_id, work)
        finally:
            try:
                observe(format_id, direction, time.perf_counter() - began)
            except Exception:  # the metrics: their failure must not fail the translation
                log.exception("observing a %s translation failed", format_id)

    def encode(self, format_id: str, message: Message) -> bytes | None:
        """The message as a document in ``format_id``, or None where the format cannot hold
        it (that format does not encode, or not this kind of message)."""
        document, _ = self.try_encode(format_id, message)
        return document

    def try_encode(self, format_id: str, message: Message) -> tuple[bytes | None, str]:
        """The document, or None and the reason code it could not be written with
        (``unsupported-format`` where the format does not encode at all)."""
        translator = self.formats.get(format_id)
        if translator is None or ENCODE not in translator.directions:
            return None, "unsupported-format"
        try:
            return self.timed(format_id, ENCODE, lambda: translator.encode(message)), ""
        except HubError as exc:  # the protobuf is still handed over; only the document is missing
            return None, exc.reason


def translator_for(
    format_id: str,
    limits: XmlLimits | None = None,
    direction: str | None = None,
    code_lists: CodeLists = NO_CODE_LISTS,
) -> Translator:
    """The translator registered as ``format_id``; with ``direction``, one that supports it."""
    return pick(registry(limits, code_lists), format_id, direction)
