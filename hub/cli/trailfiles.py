"""The trail export folder: written from a store, read back for verification.

A thin shell around hub/trail/verify.py. Every file is written under a temporary name and
renamed into place, the manifest last, so a folder with a manifest is a complete export.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from hub.core.errors import HubError
from hub.core.times import rfc3339
from hub.files import write_atomically
from hub.store.db import Store
from hub.store.schema import utcnow
from hub.trail import checkpoint
from hub.trail import verify as trailcheck

ENTRIES = "entries.bin"
LATEST = "checkpoint.note"
MANIFEST = "MANIFEST.json"
CHECKPOINTS = "checkpoints"
# Entries read from the store per query: a few MB of leaves, and a full export of a million
# entries in a hundred queries.
EXPORT_CHUNK = 10_000


class ExportFolderError(HubError):
    default_reason = "export-invalid"


@dataclass(frozen=True)
class Exported:
    folder: Path
    entries: int
    checkpoints: int
    latest_checkpoint: int


def _write(path: Path, data: bytes) -> None:
    write_atomically(path, data)


class _Folder:
    """The export folder being written (synchronous file I/O: an operator's command)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / CHECKPOINTS).mkdir(exist_ok=True)
        self._tmp = folder / (ENTRIES + ".tmp")
        self._entries = self._tmp.open("wb")
        self.digest = hashlib.sha256()
        self.count = 0

    def note(self, name: str, note: bytes) -> None:
        _write(self.folder / name, note)

    def records(self, rows: list[tuple[int, bytes, bytes]]) -> None:
        for index, leaf, stored in rows:
            record = trailcheck.encode_record(index, leaf, stored)
            self.digest.update(record)
            self._entries.write(record)
        self.count += len(rows)

    def finish(self, manifest: dict[str, object]) -> None:
        self._entries.flush()
        os.fsync(self._entries.fileno())
        self._entries.close()
        self._tmp.replace(self.folder / ENTRIES)
        _write(self.folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def abandon(self) -> None:
        self._entries.close()
        self._tmp.unlink(missing_ok=True)


async def export_trail(store: Store, folder: Path, origin: str) -> Exported:
    """Write every entry and every signed checkpoint of ``store``'s trail into ``folder``.
    The trail only grows, so entries appended while this runs are either in or after the
    export; every checkpoint exported covers only entries that are in it."""
    out = _Folder(folder)
    try:
        signed = await store.trail.checkpoints()  # first: every one covers entries that exist now
        for point in signed:
            out.note(f"{CHECKPOINTS}/{point.size:020d}.note", point.note)
        size = await store.trail.size()
        for start in range(0, size, EXPORT_CHUNK):
            out.records(await store.trail.records(start, start + EXPORT_CHUNK))
        latest = signed[-1].size if signed else 0
        if signed:
            out.note(LATEST, signed[-1].note)
        out.finish(
            {
                "format": trailcheck.FORMAT,
                "origin": origin,
                "entries": out.count,
                "entries_sha256": out.digest.hexdigest(),
                "checkpoints": [p.size for p in signed],
                "latest_checkpoint": latest,
                "exported_at": rfc3339(utcnow()),
            }
        )
    except BaseException:
        out.abandon()
        raise
    return Exported(folder, out.count, len(signed), latest)


def read_key(text_or_path: str) -> checkpoint.NoteKey:
    """A verifier key: a file holding the key string (``trail.vkey``), or the string."""
    path = Path(text_or_path)
    try:
        text = path.read_text(encoding="utf-8") if path.is_file() else text_or_path
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportFolderError(f"{path}: cannot read the verifier key: {exc}") from None
    try:
        return checkpoint.parse_verifier(text)
    except checkpoint.CheckpointError as exc:
        where = str(path) if path.is_file() else "--key"
        raise ExportFolderError(f"{where}: {exc}", reason="key-invalid") from None


def _read_note(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(checkpoint.MAX_NOTE_BYTES + 1)  # a larger note is refused as such


def verify_folder(folder: Path, key: checkpoint.NoteKey) -> trailcheck.Report:
    """Verify an export folder with nothing but its files and ``key``."""
    manifest_path = folder / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ExportFolderError(
            f"{manifest_path}: missing; not a complete export (run `customs-hub trail export`)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ExportFolderError(f"{manifest_path}: not readable JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != trailcheck.FORMAT:
        raise ExportFolderError(f"{manifest_path}: format is not {trailcheck.FORMAT}")
    declared = manifest.get("entries")
    if not isinstance(declared, int) or isinstance(declared, bool) or declared < 0:
        raise ExportFolderError(f"{manifest_path}: entries must be a count; found {declared!r}")
    notes = [
        (f"{CHECKPOINTS}/{p.name}", _read_note(p))
        for p in sorted((folder / CHECKPOINTS).glob("*.note"))
    ]
    if (folder / LATEST).is_file():
        notes.append((LATEST, _read_note(folder / LATEST)))
    try:
        with (folder / ENTRIES).open("rb") as f:
            return trailcheck.verify(trailcheck.read_records(f), notes, key, declared)
    except FileNotFoundError:
        raise ExportFolderError(f"{folder / ENTRIES}: missing") from None
