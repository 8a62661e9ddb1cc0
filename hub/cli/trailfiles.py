"""The trail export folder: written from a store, read back for verification.

A thin shell around hub/trail/verify.py. Every file is written under a temporary name and
renamed into place, the manifest last, so a folder with a manifest is a complete export.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from hub.core.errors import HubError
from hub.core.times import rfc3339
from hub.files import write_atomically
from hub.store.db import Store
from hub.store.schema import utcnow
from hub.trail import checkpoint
from hub.trail import messages as evidence
from hub.trail import verify as trailcheck

ENTRIES = "entries.bin"
LATEST = "checkpoint.note"
MANIFEST = "MANIFEST.json"
CHECKPOINTS = "checkpoints"
MESSAGES = "messages.bin"
CERTIFICATES = "certificates"
ANCHOR = "trust-anchor.pem"
# Entries read from the store per query: a few MB of leaves, and a full export of a million
# entries in a hundred queries.
EXPORT_CHUNK = 10_000
# Messages read per query: envelopes are a few KB, at most max_envelope_bytes (4 MiB).
MESSAGE_CHUNK = 500

# a party's trust anchor and signing certificates, PEM (hub/app/keys.py trusted_certificates)
Certificates = Mapping[str, tuple[bytes, Sequence[bytes]]]


class ExportFolderError(HubError):
    default_reason = "export-invalid"


@dataclass(frozen=True)
class Exported:
    folder: Path
    entries: int
    checkpoints: int
    latest_checkpoint: int
    messages: int = 0


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
        self._messages_tmp = folder / (MESSAGES + ".tmp")
        self._messages = self._messages_tmp.open("wb")
        self.messages_digest = hashlib.sha256()
        self.message_count = 0

    def note(self, name: str, note: bytes) -> None:
        _write(self.folder / name, note)

    def records(self, rows: list[tuple[int, bytes, bytes]]) -> None:
        for index, leaf, stored in rows:
            record = trailcheck.encode_record(index, leaf, stored)
            self.digest.update(record)
            self._entries.write(record)
        self.count += len(rows)

    def messages(self, rows: list[evidence.MessageRecord]) -> None:
        for row in rows:
            record = evidence.encode_message(row)
            self.messages_digest.update(record)
            self._messages.write(record)
        self.message_count += len(rows)

    def certificates(self, certificates: Certificates) -> None:
        for party, (anchor, signing) in sorted(certificates.items()):
            where = self.folder / CERTIFICATES / party
            where.mkdir(parents=True, exist_ok=True)
            _write(where / ANCHOR, anchor)
            for n, cert in enumerate(signing):
                _write(where / f"signing-{n}.pem", cert)

    def finish(self, manifest: dict[str, object]) -> None:
        for stream, tmp, name in (
            (self._entries, self._tmp, ENTRIES),
            (self._messages, self._messages_tmp, MESSAGES),
        ):
            stream.flush()
            os.fsync(stream.fileno())
            stream.close()
            tmp.replace(self.folder / name)
        _write(self.folder / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())

    def abandon(self) -> None:
        for stream, tmp in ((self._entries, self._tmp), (self._messages, self._messages_tmp)):
            stream.close()
            tmp.unlink(missing_ok=True)


async def export_trail(
    store: Store, folder: Path, origin: str, certificates: Certificates | None = None
) -> Exported:
    """Write every entry and every signed checkpoint of ``store``'s trail into ``folder``,
    every stored message with its envelope, and the ``certificates`` the hub trusts (its own
    and its partners' trust anchors and signing certificates). The trail only grows, so
    entries appended while this runs are either in or after the export; every checkpoint
    exported covers only entries that are in it, and every message exported has its leaf in
    it (a message commits with its leaf, and messages are read before the trail's size)."""
    out = _Folder(folder)
    try:
        signed = await store.trail.checkpoints()  # first: every one covers entries that exist now
        for point in signed:
            out.note(f"{CHECKPOINTS}/{point.size:020d}.note", point.note)
        for direction in (evidence.INBOUND, evidence.OUTBOUND):
            after = 0
            while rows := await store.views.evidence(direction, after, MESSAGE_CHUNK):
                out.messages([row for _, row in rows])
                after = rows[-1][0]
        out.certificates(certificates or {})
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
                "messages": out.message_count,
                "messages_sha256": out.messages_digest.hexdigest(),
                "certificates": sorted(certificates or {}),
                "exported_at": rfc3339(utcnow()),
            }
        )
    except BaseException:
        out.abandon()
        raise
    return Exported(folder, out.count, len(signed), latest, out.message_count)


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


def _manifest(folder: Path) -> dict[str, object]:
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
    return manifest


def verify_folder(folder: Path, key: checkpoint.NoteKey) -> trailcheck.Report:
    """Verify an export folder with nothing but its files and ``key``."""
    manifest_path = folder / MANIFEST
    manifest = _manifest(folder)
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


def _certificates(path: Path) -> list[x509.Certificate]:
    try:
        return x509.load_pem_x509_certificates(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise ExportFolderError(f"{path}: not a PEM certificate: {exc}") from None


def _certificate(path: Path) -> x509.Certificate:
    return _certificates(path)[0]


def read_certificates(folder: Path) -> dict[str, evidence.PartyCertificates]:
    """The certificates an export carries (``certificates/<party>/``), by party; ``folder`` is
    the export or its ``certificates`` folder."""
    if (folder / CERTIFICATES).is_dir():
        folder = folder / CERTIFICATES
    found = {}
    for where in sorted(folder.glob("*/")):
        if not (where / ANCHOR).is_file():
            raise ExportFolderError(f"{where / ANCHOR}: missing")
        signing = sorted(where.glob("signing-*.pem"), key=lambda p: p.stem)
        found[where.name] = evidence.PartyCertificates(  # a CA and its successors, if any
            _certificates(where / ANCHOR), [_certificate(p) for p in signing]
        )
    return found


def verify_messages(folder: Path, trail_report: trailcheck.Report) -> evidence.MessagesReport:
    """Check every message an export holds against the leaves ``trail_report`` verified
    (hub/trail/messages.py), with the certificates the export carries."""
    manifest = _manifest(folder)
    if not (folder / MESSAGES).is_file():
        raise ExportFolderError(
            f"{folder / MESSAGES}: missing; exported by a customs-hub that did not export "
            "messages (export again)"
        )
    certificates = read_certificates(folder)
    with (folder / ENTRIES).open("rb") as f:
        try:
            leaves = evidence.message_leaves(trailcheck.read_records(f))
        except trailcheck.ExportError as exc:
            raise ExportFolderError(str(exc)) from None
    report = evidence.MessagesReport()
    with (folder / MESSAGES).open("rb") as f:
        counted = _Counted(evidence.read_messages(f))
        try:
            report = evidence.verify_messages(
                counted, leaves, trail_report.verified_size, certificates
            )
        except trailcheck.ExportError as exc:
            report.add(evidence.Problem(None, "", "", "", str(exc)))
            return report
    declared = manifest.get("messages")
    if declared != counted.count:
        report.add(
            evidence.Problem(
                None, "", "", "", f"the manifest says {declared} messages; found {counted.count}"
            )
        )
    return report


class _Counted:
    """An iterator that counts what it hands on."""

    def __init__(self, items: Iterator[evidence.MessageRecord]) -> None:
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator[evidence.MessageRecord]:
        for item in self.items:
            self.count += 1
            yield item
