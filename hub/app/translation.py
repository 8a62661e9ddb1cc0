"""Documents translated where they cost the event loop least, large ones in a process of
their own.

Translating is CPU-bound Python: an 8 MiB EDIFACT interchange keeps a core busy for seconds.
On the event loop that stalled every partner's call; on a thread it still holds the GIL, and
every call the loop serves waits for it in turn (measured with bench/stall.py: deliveries went
from 7 ms to seconds either way). So:

- a domestic document its format translates in a few milliseconds at worst (``light``: e.g.
  WCO XML of at most 32 KiB and 400 tags) is translated on the event loop itself
  (``HubContext.translate``): handing it to a thread makes the loop and the thread take turns at the
  GIL, which cost bench/e2e.py a quarter of its declarations per second. Partners' documents
  are never translated on the loop: they are not ours to trust with it;
- any other document of at most ``ISOLATE_BYTES`` is translated on the calling thread (one of
  the hub's worker threads, ``HubContext.off_loop``): 32 KiB of EDIFACT takes some 20 ms, and a trip
  to another process would cost more than it saves;
- a larger one is translated in a separate worker process (spawned, not forked: the hub runs
  gRPC's threads), one document at a time, so it costs the hub's own process nothing but the
  wait; the calling thread blocks without holding the GIL. The process is started on the first
  large document and replaced after ``TASKS_PER_PROCESS`` of them, so what a huge document made
  it allocate is given back.

A worker process that dies (out of memory, a crash in a parser) is replaced, and the documents
it had are translated again by the new one, once: a document that ends a second process too
is refused with ``translation-failed``; one that takes longer than ``TRANSLATE_SECONDS`` is
refused with ``translation-timeout`` and its process is ended (the documents queued behind it
go to the next). A thread waiting for the process holds no GIL, and the hub has enough worker
threads that a few such waits leave others free.

What it must never do: translate a large document inside the hub's process, or let one
document's failure fail another's.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from concurrent.futures.process import BrokenProcessPool

from google.protobuf.message import DecodeError, Message

from adapters.base import DECODE, Item, decode_all, is_light
from adapters.formats import Decoded, Translators, decode_isolated, detect
from hub.core.errors import HubError, TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import body_class

log = logging.getLogger("customs_hub.translation")

# Documents above this many bytes are translated in the worker process.
ISOLATE_BYTES = 32 * 1024
# Documents a worker process translates before it is replaced (its memory returned).
TASKS_PER_PROCESS = 64
# The longest a document may take in the worker process (8 MiB of EDIFACT takes some 15 s).
TRANSLATE_SECONDS = 60.0


class Translation:
    """The hub's translations of documents into business messages. Its methods block: call
    them from a worker thread (``HubContext.off_loop``), never on the event loop, except ``decode``
    for a document ``light`` says is cheap (``HubContext.translate``)."""

    def __init__(self, translators: Translators, limits: XmlLimits | None) -> None:
        self.translators = translators
        self.limits = limits
        self._lock = threading.Lock()
        self._process: ProcessPoolExecutor | None = None
        self.isolated = 0  # documents translated in the worker process (tests, telemetry)

    def light(self, format_id: str, content: bytes) -> bool:
        """Whether a document is cheap enough to translate on the event loop: one its format
        says is ``light`` (adapters/formats.py; the format detected when not named), never
        one for the translation process. One in a format nobody registered is refused as
        cheaply."""
        if len(content) > ISOLATE_BYTES:
            return False
        try:
            found = format_id or detect(content, self.translators.formats)
        except HubError:
            return True
        translator = self.translators.formats.get(found)
        return translator is None or is_light(translator, content)

    def decode(self, format_id: str, content: bytes) -> Message:
        """One business message from a document; an empty ``format_id`` is detected."""
        if len(content) <= ISOLATE_BYTES:
            return self.translators.decode(format_id, content)
        _, [(_, name, data, _)] = self._isolate(format_id, content, "", many=False)
        return _message(name, data)

    def _observe(self, format_id: str, began: float) -> None:
        """Tell the hub's metrics of a translation that began at ``began`` (perf_counter)."""
        observe = self.translators.observe
        if observe is not None:
            observe(format_id or "auto", DECODE, time.perf_counter() - began)

    def decode_file(self, format_id: str, data: bytes, source: str) -> tuple[str, list[Item]]:
        """Every document of a file, and its format (detected where ``format_id`` is empty);
        a file that cannot be read at all raises TranslationError."""
        if len(data) <= ISOLATE_BYTES:
            found = format_id or detect(data, self.translators.formats)
            began = time.perf_counter()
            items = decode_all(self.translators.reader(found), data, source=source)
            self._observe(found, began)
            return found, items
        found, decoded = self._isolate(format_id, data, source, many=True)
        items = []
        for line, name, body, error in decoded:
            if error is not None or not name:
                items.append(Item(None, error, line))
                continue
            try:
                items.append(Item(_message(name, body), None, line))
            except TranslationError as exc:
                items.append(Item(None, exc, line))
        return found, items

    def _isolate(
        self, format_id: str, data: bytes, source: str, *, many: bool
    ) -> tuple[str, list[Decoded]]:
        self.isolated += 1
        began = time.perf_counter()
        found, decoded = self._isolate_once(format_id, data, source, many=many)
        self._observe(found, began)
        return found, decoded

    def _isolate_once(
        self, format_id: str, data: bytes, source: str, *, many: bool
    ) -> tuple[str, list[Decoded]]:
        for attempt in (1, 2):
            process = self._worker()
            try:
                future = process.submit(
                    decode_isolated,
                    self.limits,
                    format_id,
                    data,
                    source,
                    many,
                    self.translators.code_lists,
                )
                return future.result(timeout=TRANSLATE_SECONDS)
            except HubError:
                raise
            except FuturesTimeout:
                self._replace(process, kill=True)
                log.error("a %d-byte document took over %g s to translate", len(data),
                          TRANSLATE_SECONDS)  # fmt: skip
                raise TranslationError(
                    f"the document took longer than {TRANSLATE_SECONDS:g} s to translate",
                    reason="translation-timeout",
                ) from None
            except (BrokenProcessPool, RuntimeError):  # it died, or was replaced meanwhile
                self._replace(process)
                if attempt == 2:
                    log.error("the translation process ended twice on a %d-byte document",
                              len(data))  # fmt: skip
                    raise TranslationError(
                        "the document could not be translated: the translation process "
                        "ended (a document too large for its memory?)",
                        reason="translation-failed",
                    ) from None
            except Exception as exc:  # noqa: BLE001 - what the boundary turns into a refusal
                log.error("translation process: %s", type(exc).__name__)
                raise TranslationError(
                    f"the document could not be translated ({type(exc).__name__})",
                    reason="translation-failed",
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _worker(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._process is None:
                self._process = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=multiprocessing.get_context("spawn"),
                    max_tasks_per_child=TASKS_PER_PROCESS,
                )
            return self._process

    def _replace(self, broken: ProcessPoolExecutor, *, kill: bool = False) -> None:
        """A new process for the next document; with ``kill``, the old one is ended now (it
        is still busy with a document nobody waits for)."""
        with self._lock:
            if self._process is broken:
                self._process = None
        if kill:
            # the standard library gives no other way to end a busy worker before 3.14
            for worker in list(getattr(broken, "_processes", {}).values()):
                worker.kill()
        broken.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            process.shutdown(wait=False, cancel_futures=True)


def _message(name: str, data: bytes) -> Message:
    cls = body_class(name)
    if cls is None:
        raise TranslationError(
            f"the translator returned a {name!r}, which is not a business message",
            reason="translation-failed",
        )
    try:
        return cls.FromString(data)
    except DecodeError:  # pragma: no cover - bytes this process's own protobuf wrote
        raise TranslationError(
            "the translation came back damaged", reason="translation-failed"
        ) from None
