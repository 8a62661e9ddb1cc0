"""The drop-folder connector: domestic systems exchange documents with the hub as files.

Each ``[folders.<name>]`` of the configuration is one folder tree:

    inbox/             files to submit; their format is detected
    inbox/<sub>/       files in the format configured for that subfolder (inbox_formats)
    processed/         files of which every document was accepted (queued for partners)
    rejected/          files with a refused document, each with ``<file>.error.json`` beside it
    outbox/<format>/   messages from partners, one file each, in the folder's outbox_format
                       (or proto-json where that format cannot hold the message);
                       ``outbox/<format>/superseded/`` for those a newer revision replaced
    .work/             this connector's temporary files (renames within one file system)

Confinement. Whoever can write to inbox/ must not be able to make the hub read, move or write
anything outside the folder: every level below the configured path is opened by descriptor,
relative to the one above, and a level that is a symbolic link (or not a directory) is refused,
logged and recorded in the trail, never followed (``hub.files.Tree``); files are opened without
following links, and names in logs are quoted, so a name cannot forge a log line.

Restart safety. A file leaves inbox/ only after the hub has made what it holds durable. Each
document's submission id is derived from the file's identity (name, inode, modification time,
content digest) and the document's place in it, so a file submitted again after a crash (it
was still in inbox/) gets the first answers back and nothing is queued twice; the move to
processed/ or rejected/ then happens. An outbox file is written under a temporary name, synced
and renamed into place, and only then acknowledged: after a crash it is written again under
the same name (its message id), never half.

Scanning. A pass lists inbox/ once and works through everything listed, in batches, before it
lists again, so a folder of thousands of files costs one listing per pass, not one per file.

What it must never do: move a file out of inbox/ before its documents are durable or refused
with their reasons recorded; lose a file; leave a partial file in outbox/.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import PurePath
from typing import Any, TypeVar

from google.protobuf.message import Message

from adapters.base import DECODE, ENCODE, Item
from hub.app.hub import Hub
from hub.app.submission import Submission, derived_messages
from hub.app.telemetry import now_ns
from hub.app.traces import Pickup, hand_over
from hub.config import FolderConfig
from hub.core.errors import ConfigError, HubError, LimitError, TranslationError
from hub.core.messages import body_class
from hub.core.times import rfc3339
from hub.files import Directory, NotConfined, Tree
from hub.store.schema import InboundMessage

log = logging.getLogger("customs_hub.folders")
T = TypeVar("T")

INBOX, PROCESSED, REJECTED, OUTBOX, WORK = "inbox", "processed", "rejected", "outbox", ".work"
REPORT_SUFFIX = ".error.json"
# Files submitted per group commit: one transaction for many small files, and a bounded
# amount of document bytes in memory (each file is at most limits.xml_max_bytes).
BATCH_FILES = 64
# Inbound messages written to an outbox per store read.
OUTBOX_BATCH = 100
# Names a writer uses while a file is not finished yet (and our own temporary files).
UNFINISHED = (".tmp", ".part", ".partial", ".crdownload", "~")
FALLBACK_FORMAT = "proto-json"
EXTENSIONS = {
    "application/xml": "xml",
    "application/json": "json",
    "text/csv": "csv",
    "application/edifact": "edi",
}


@dataclass(frozen=True)
class Dropped:
    """A file found in inbox/: where it is, relative to inbox/, and when it was last changed
    (what identifies it is taken when it is read: Outcome.identity)."""

    relative: PurePath
    format_id: str  # "" to detect
    mtime_ns: int


@dataclass
class Outcome:
    """What became of one dropped file's documents."""

    file: Dropped
    format_id: str = ""
    digest: bytes = b""
    # the file as read (fstat of the descriptor read from): what identifies it, and what must
    # still be at its path when it is moved
    identity: tuple[int, int, int] = (0, 0, 0)  # inode, mtime in ns, size
    accepted: list[tuple[int | None, list[tuple[str, str]]]] = field(default_factory=list)
    refused: list[tuple[int | None, TranslationError | HubError]] = field(default_factory=list)


def shown(name: PurePath | str) -> str:
    """A file name as logs show it: quoted, with newlines and other control characters
    escaped, so a name cannot forge a log line."""
    return repr(str(name))


def free_name(tree: Tree, top: str, relative: PurePath) -> tuple[Directory, str]:
    """Where a file goes in ``top``: its relative name, or, where that name or its report's
    name is taken (a file of that name was put before, or a file named like a report), the
    name with ``.1``, ``.2``, ... appended."""
    folder = tree.dir(PurePath(top) / relative.parent, create=True)
    name, n = relative.name, 0
    while folder.exists(name) or folder.exists(name + REPORT_SUFFIX):
        n += 1
        name = f"{relative.name}.{n}"
    return folder, name


async def finished_in_thread(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` on a thread. When the caller is cancelled meanwhile (the folder stops),
    the thread's work is waited for before the cancellation goes on, so nothing it uses (a
    tree's descriptors, closed by the caller) is closed under it."""
    # a future, not a task: what the thread raises (even SystemExit) comes back to the caller
    work = asyncio.get_running_loop().run_in_executor(None, fn, *args)
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait({work})
        raise


def sync_dirs(folders: set[Directory]) -> None:
    """Make renames into and out of these directories durable, each synced once. (A rename
    lost to a power cut only repeats work: the file is submitted again, idempotently.)"""
    for folder in folders:
        folder.sync()


class DropFolder:
    """One configured folder: its inbox loop and its outbox loop, as two tasks."""

    def __init__(self, config: FolderConfig, hub: Hub) -> None:
        self.config, self.hub, self.store = config, hub, hub.store
        self.max_bytes = hub.config.limits.xml_max_bytes
        self.poll_seconds = hub.config.limits.poll_seconds
        self.source = f"folder:{config.name}"
        self.root = config.path
        formats = hub.translators.formats
        for sub, format_id in config.inbox_formats.items():
            translator = formats.get(format_id)
            if translator is None or DECODE not in translator.directions:
                raise ConfigError(
                    f"folders.{config.name}.inbox_formats.{sub}: {format_id!r} is not a "
                    f"registered format that can be read; formats are {', '.join(sorted(formats))}",
                    reason="config-invalid",
                )
        if config.outbox_format:
            translator = formats.get(config.outbox_format)
            if translator is None or ENCODE not in translator.directions:
                raise ConfigError(
                    f"folders.{config.name}.outbox_format: {config.outbox_format!r} is not a "
                    f"registered format that can be written; formats are "
                    f"{', '.join(sorted(formats))}",
                    reason="config-invalid",
                )
        self.scans = 0  # listings of inbox/ (tests check a pass lists once)
        # levels found to be links (or not directories) by the last listing, and those
        # already reported (once each, until they change)
        self.unsafe: dict[str, str] = {}
        self._reported: dict[str, str] = {}
        self._reported_outbox: dict[str, str] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()

    # --- life cycle ------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the folder tree (at start-up: a missing or unwritable path fails the start)."""
        try:
            with Tree(self.root, create=True) as tree:
                for name in (INBOX, PROCESSED, REJECTED, WORK):
                    tree.dir(name, create=True)
                for sub in self.config.inbox_formats:
                    tree.dir(PurePath(INBOX, sub), create=True)
                if self.config.outbox_format:
                    tree.dir(OUTBOX, create=True)
                work = tree.dir(WORK)
                for leftover in work.entries():  # a crash's temporary files
                    if not leftover.is_dir(follow_symlinks=False):
                        work.remove(leftover.name)
        except NotConfined as exc:
            raise ConfigError(
                f"folders.{self.config.name}.path: {shown(exc.path)} in {self.root} {exc.what}; "
                "each level of a drop folder must be a directory of its own",
                reason="folder-unsafe",
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"folders.{self.config.name}.path: cannot use {self.root}: {exc.strerror}",
                reason="config-invalid",
            ) from None

    def start(self) -> None:
        self.prepare()
        self.tasks.append(asyncio.create_task(self._inbox_loop(), name=f"{self.source}-inbox"))
        if self.config.outbox_format:
            self.tasks.append(
                asyncio.create_task(self._outbox_loop(), name=f"{self.source}-outbox")
            )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()
        self._stopping.clear()  # stopped: its passes may still be run by hand

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    # --- inbox -----------------------------------------------------------------------------

    async def _inbox_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self.run_pass()
            except HubError as exc:  # the store is unavailable: files stay, tried again
                log.error("%s: %s; the files stay in inbox/ and are tried again", self.source, exc)
                done = 0
            except OSError as exc:  # the folder itself is gone or unreadable
                log.error("%s: cannot use %s: %s", self.source, self.root, exc.strerror)
                done = 0
            except Exception:
                log.exception("%s: a pass failed; the files stay in inbox/", self.source)
                done = 0
            if not done:
                await self._pause(self.poll_seconds)

    def scan(self) -> list[Dropped]:
        """Every finished file in inbox/ and its configured subfolders, oldest first."""
        self.scans += 1
        settled_before = time.time_ns() - int(self.config.settle_seconds * 1e9)
        found: list[Dropped] = []
        unsafe: dict[str, str] = {}
        places = [("", ""), *self.config.inbox_formats.items()]
        with Tree(self.root) as tree:
            for sub, format_id in places:
                try:
                    folder = tree.dir(PurePath(INBOX, sub))
                except NotConfined as exc:  # a link planted as inbox/ or a subfolder
                    unsafe[str(exc.path)] = exc.what
                    continue
                except FileNotFoundError:
                    continue
                for entry in folder.entries():
                    if entry.name.startswith(".") or entry.name.endswith(UNFINISHED):
                        continue
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    info = entry.stat(follow_symlinks=False)
                    if info.st_mtime_ns > settled_before:
                        continue
                    found.append(Dropped(PurePath(sub, entry.name), format_id, info.st_mtime_ns))
        self.unsafe = unsafe
        found.sort(key=lambda d: (d.mtime_ns, str(d.relative)))
        return found

    async def _report_unsafe(self) -> None:
        """Log and record each inbox level found to be a link, once, until it changes."""
        for level, what in self.unsafe.items():
            await self._report_level(self._reported, level, what)
        for level in set(self._reported) - set(self.unsafe):
            del self._reported[level]

    async def _report_level(self, reported: dict[str, str], level: str, what: str) -> None:
        if reported.get(level) == what:
            return
        error = ConfigError(
            f"{level} {what}; it is not followed, and nothing is taken from it or put in it "
            "until it is a directory of the drop folder's own",
            reason="folder-unsafe",
        )
        log.error("%s: %s %s; not followed", self.source, shown(level), what)
        await self.hub.audit.record_rejection(self.source, None, error)
        reported[level] = what

    async def run_pass(self) -> int:
        """List inbox/ once and submit everything listed; the number of files handled."""
        listed = await finished_in_thread(self.scan)
        await self._report_unsafe()
        for start in range(0, len(listed), BATCH_FILES):
            if self._stopping.is_set():
                break
            await self.submit_files(listed[start : start + BATCH_FILES])
        return len(listed)

    def _read(self, tree: Tree, dropped: Dropped) -> Outcome | tuple[Outcome, bytes] | None:
        """The file's bytes, read from one descriptor that also says what the file is; None
        when it is no longer a regular file at that path (replaced by a link, a FIFO, gone)."""
        outcome = Outcome(dropped)
        try:
            folder = tree.dir(PurePath(INBOX) / dropped.relative.parent)
            fd = folder.open_read(dropped.relative.name)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a link now, at any level: for the next listing to report
            log.warning("%s: cannot open %s: %s", self.source, shown(dropped.relative),
                        exc.strerror)  # fmt: skip
            return None
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode):
                return None
            outcome.identity = (info.st_ino, info.st_mtime_ns, info.st_size)
            if info.st_nlink != 1:  # a hard link to a file that lives elsewhere: not read
                linked = TranslationError(
                    f"the file has {info.st_nlink} links; a file linked from elsewhere is not "
                    "read (drop a file of its own, written elsewhere and renamed into inbox/)",
                    reason="file-linked",
                )
                outcome.refused.append((None, linked))
                return outcome
            data = file.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            too_big = f"the file is over {self.max_bytes} bytes, the limit"
            outcome.refused.append((None, LimitError(too_big)))
            return outcome
        outcome.digest = hashlib.sha256(data).digest()
        return outcome, data

    def _decode(self, outcome: Outcome, data: bytes) -> list[Item]:
        """The file's documents (on a worker thread: large files in the translation
        process)."""
        translation = self.hub.translation
        try:
            outcome.format_id, items = translation.decode_file(
                outcome.file.format_id, data, str(outcome.file.relative)
            )
            return items
        except TranslationError as exc:
            outcome.refused.append((exc.line, exc))
            return []

    def submission_id(self, outcome: Outcome, index: int) -> str:
        """Stable across restarts for this very file, different for any other file (another
        name, inode, modification time or content), at most 128 characters."""
        inode, mtime_ns, _ = outcome.identity
        name = os.fsencode(outcome.file.relative)  # any name the file system allows
        identity = name + f"\0{inode}\0{mtime_ns}\0".encode() + outcome.digest
        return f"{self.source}:{hashlib.sha256(identity).hexdigest()[:48]}:{index}"

    async def submit_files(self, files: Sequence[Dropped]) -> None:
        tree = Tree(self.root)  # a few system calls: on the loop, so a cancellation never leaks it
        try:
            await self._submit_files(tree, files)
        finally:
            tree.close()

    async def _submit_files(self, tree: Tree, files: Sequence[Dropped]) -> None:
        outcomes: list[Outcome] = []
        pending: list[tuple[Outcome, int | None]] = []
        submissions: list[Submission] = []
        tracing = self.hub.telemetry.tracing
        for dropped in files:
            start = now_ns() if tracing else 0  # the pickup, for the documents' traces
            read = await finished_in_thread(self._read, tree, dropped)
            if read is None:  # taken away, or replaced by something that is not a file
                continue
            if isinstance(read, Outcome):
                outcomes.append(read)
                await self._record(read)
                continue
            outcome, data = read
            outcomes.append(outcome)
            began = now_ns() if tracing else 0
            items = await self.hub.off_loop(self._decode, outcome, data)
            pickup = Pickup(start, (began, now_ns(), outcome.format_id)) if tracing else None
            if not items and not outcome.refused:
                empty = TranslationError("the file holds no document", reason="no-document")
                outcome.refused.append((None, empty))
            for index, item in enumerate(items):
                if item.message is None:
                    missing = TranslationError("no document", reason="no-document")
                    outcome.refused.append((item.line, item.error or missing))
                    continue
                pending.append((outcome, item.line))
                submissions.append(
                    Submission(
                        item.message,
                        self.config.recipients,
                        document_digest=outcome.digest,
                        derived=derived_messages(item.message),
                        submission_id=self.submission_id(outcome, index),
                        source=self.source,
                        pickup=pickup,
                    )
                )
            await self._record(outcome)
        results = await self.hub.submission.submit_many(submissions) if submissions else []
        for (outcome, line), result in zip(pending, results, strict=True):
            if isinstance(result, HubError):  # recorded by the hub
                outcome.refused.append((line, result))
            else:
                outcome.accepted.append((line, [(q.message_id, q.recipient) for q in result]))
        await finished_in_thread(self._settle_all, tree, outcomes)

    def _settle_all(self, tree: Tree, outcomes: Sequence[Outcome]) -> None:
        touched: set[Directory] = set()
        for outcome in outcomes:
            try:
                touched |= self._settle(tree, outcome)
            except OSError as exc:  # one file that cannot move holds up no other
                touched |= self._quarantine(tree, outcome, exc)
        sync_dirs(touched)

    def _quarantine(self, tree: Tree, outcome: Outcome, error: OSError) -> set[Directory]:
        """A file that cannot go where it belongs (its name is too long with a suffix, say)
        goes to rejected/ under a short name made from its own, with its report."""
        f = outcome.file
        short = PurePath(hashlib.sha256(os.fsencode(f.relative)).hexdigest()[:16])
        log.error("%s: cannot move %s (%s); it goes to rejected/%s", self.source,
                  shown(f.relative), error.strerror, short)  # fmt: skip
        if not outcome.refused:
            outcome.refused.append(
                (None, TranslationError(f"accepted, but {error.strerror}", reason="file-name"))
            )
        try:
            inbox = tree.dir(PurePath(INBOX) / f.relative.parent)
            folder = self._reject(tree, outcome, inbox, short)
        except OSError as again:
            log.error("%s: %s stays in inbox/: %s", self.source, shown(f.relative),
                      again.strerror)  # fmt: skip
            return set()
        return {inbox, folder}

    async def _record(self, outcome: Outcome) -> None:
        """Record the refusals found reading a file (the hub records its own)."""
        for _, error in outcome.refused:
            await self.hub.audit.record_rejection(
                self.source, None, error, document_digest=outcome.digest or None
            )

    def _settle(self, tree: Tree, outcome: Outcome) -> set[Directory]:
        """Move a file whose documents are all accepted to processed/; any other to rejected/,
        its report written first (a crash in between writes it again). The directories it
        changed."""
        f = outcome.file
        inbox = tree.dir(PurePath(INBOX) / f.relative.parent)
        now = inbox.lstat(f.relative.name)
        if now is None:
            return set()
        if (now.st_ino, now.st_mtime_ns, now.st_size) != outcome.identity:
            # replaced or changed since it was read: what was read is submitted; what is
            # there now is another file, for the next pass
            log.warning("%s: %s changed while it was read; taken again", self.source,
                        shown(f.relative))  # fmt: skip
            return set()
        if not outcome.refused:
            folder, name = free_name(tree, PROCESSED, f.relative)
            inbox.move(f.relative.name, folder, name)
            log.info("%s: %s processed", self.source, shown(f.relative))
            return {inbox, folder}
        folder = self._reject(tree, outcome, inbox, f.relative)
        log.warning(
            "%s: %s rejected (%d document(s) refused, %d accepted)",
            self.source,
            shown(f.relative),
            len(outcome.refused),
            len(outcome.accepted),
        )
        return {inbox, folder}

    def _reject(
        self, tree: Tree, outcome: Outcome, inbox: Directory, relative: PurePath
    ) -> Directory:
        """The file to rejected/, at ``relative`` or the next free name, its report written
        first (a report at a free name is an earlier attempt's, cut short: written again)."""
        folder, name = free_name(tree, REJECTED, relative)
        report = (json.dumps(self.report(outcome), indent=2) + "\n").encode()
        folder.write(name + REPORT_SUFFIX, report, work=tree.dir(WORK))
        inbox.move(outcome.file.relative.name, folder, name)
        return folder

    def report(self, outcome: Outcome) -> dict[str, Any]:
        """The error report beside a rejected file: what was refused and why, line by line,
        and what of it was accepted anyway (those documents are queued: resubmit only the
        refused ones)."""
        refused = []
        for line, error in outcome.refused:
            entry: dict[str, Any] = {"reason": error.reason, "detail": error.message}
            if isinstance(error, TranslationError):
                if error.line or line:
                    entry["line"] = error.line or line
                if error.column:
                    entry["column"] = error.column
                if error.path:
                    entry["path"] = error.path
            elif line:
                entry["line"] = line
            refused.append(entry)
        return {
            "file": f"{INBOX}/{outcome.file.relative}",
            "format": outcome.format_id,
            "sha256": outcome.digest.hex(),
            "at": rfc3339(datetime.now(UTC), "seconds"),
            "refused": refused,
            "accepted": [
                {
                    **({"line": line} if line else {}),
                    "queued": [{"message_id": m, "recipient": r} for m, r in queued],
                }
                for line, queued in outcome.accepted
            ],
        }

    # --- outbox ----------------------------------------------------------------------------

    @property
    def subscriber(self) -> str:
        return self.source

    async def _outbox_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                written = await self.write_outbox()
            except NotConfined as exc:  # an outbox level made a link: reported once
                await self._report_level(self._reported_outbox, str(exc.path), exc.what)
                await self._pause(self.poll_seconds)
                continue
            except (HubError, OSError) as exc:
                log.error("%s outbox: %s; tried again", self.source, exc)
                await self._pause(self.poll_seconds)
                continue
            if not written:
                await self.hub.inbound_arrived.wait(self.poll_seconds)

    async def write_outbox(self) -> int:
        """Write the next messages from partners as files; acknowledge them once they are in
        place. The number written."""
        telemetry = self.hub.telemetry
        start = now_ns() if telemetry.tracing else 0
        cursor = await self.store.inbound.acknowledged(self.subscriber)
        rows = await self.store.inbound.after(cursor, OUTBOX_BATCH)
        if not rows:
            return 0
        files = await self.hub.off_loop(lambda: [self._outbox_file(row) for row in rows])
        await finished_in_thread(self._write_all, files)
        self._reported_outbox.clear()
        await self.store.inbound.acknowledge(self.subscriber, rows[-1].id or cursor)
        if telemetry.tracing:  # each handed over once its file is in place
            for row in rows:
                hand_over(telemetry, start, row)
        return len(rows)

    def _outbox_file(self, row: InboundMessage) -> tuple[PurePath, bytes]:
        cls = body_class(row.body_type)
        message: Message | None = cls.FromString(row.body) if cls is not None else None
        translators = self.hub.translators
        format_id, data = self.config.outbox_format, None
        if message is not None:
            data = translators.encode(format_id, message)
            if data is None:
                format_id, data = FALLBACK_FORMAT, translators.encode(FALLBACK_FORMAT, message)
        if data is None:  # not a business message this hub knows: the signed body as is
            format_id, data = "protobuf", bytes(row.body)
        translator = translators.formats.get(format_id)
        ext = EXTENSIONS.get(translator.media_type.lower(), "dat") if translator else "pb"
        folder = PurePath(OUTBOX, format_id)
        if row.superseded:
            folder = folder / "superseded"
        # the inbound cursor first: names sort in arrival order
        name = f"{row.id:012d}-{row.sender}-{row.message_id}.{ext}"
        return folder / name, data

    def _write_all(self, files: Sequence[tuple[PurePath, bytes]]) -> None:
        with Tree(self.root) as tree:
            work = tree.dir(WORK, create=True)
            touched: set[Directory] = set()
            for target, data in files:
                folder = tree.dir(target.parent, create=True)
                folder.write(target.name, data, work=work)
                touched.add(folder)
            sync_dirs(touched)  # before the acknowledgement
