"""Offline verification of an exported trail (pure core).

``customs-hub trail export`` writes a folder an auditor can take away: the trail's entries
(``entries.bin``), every checkpoint the hub signed (``checkpoints/``, the latest also as
``checkpoint.note``) and a manifest. ``customs-hub trail verify`` recomputes the Merkle roots
from the entries alone and compares them with the signed checkpoints, so it needs nothing but
the export and the hub's verifier key: the first one, if the hub has rotated its trail key
since, for the hand-over checkpoints lead from it to the others (hub/trail/handover.py).
docs/trail.md describes the format.

``entries.bin`` is a sequence of records, one per entry, in index order::

    uint64 index (big-endian) | uint32 length | leaf (length bytes) | stored leaf hash (32)

The leaf is the stored TrailEvent as it was appended. The stored leaf hash is what the hub's
tree was built from; it is not trusted, but when the leaves fail a checkpoint and the stored
hashes pass it, the stored hashes are authentic and name the first altered leaf exactly.

What it must never do: trust anything in the export that a signature does not cover (the
manifest and the stored hashes only help to locate a fault), or open a file or a socket.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from hub.trail import checkpoint, handover, merkle
from hub.trail import events as trail

FORMAT = "customs-hub-trail-export/1"
RECORD_HEADER = struct.Struct(">QI")
# A TrailEvent holds ids, digests and short sentences; the hub writes a few hundred bytes.
# 1 MiB bounds what a damaged or hostile export can make the verifier read into memory.
MAX_LEAF_BYTES = 1024 * 1024


class ExportError(ValueError):
    """The export cannot be read: truncated, or a record out of bounds."""


@dataclass(frozen=True, slots=True)
class Record:
    index: int
    leaf: bytes
    stored_hash: bytes


def encode_record(index: int, leaf: bytes, stored_hash: bytes) -> bytes:
    if len(stored_hash) != merkle.HASH_SIZE or len(leaf) > MAX_LEAF_BYTES:
        raise ExportError(f"entry {index}: leaf or stored hash out of bounds")
    return RECORD_HEADER.pack(index, len(leaf)) + leaf + stored_hash


def read_records(stream: BinaryIO) -> Iterator[Record]:
    """The records of an ``entries.bin`` stream; raises ExportError where it is cut short."""
    position = 0
    while header := stream.read(RECORD_HEADER.size):
        if len(header) != RECORD_HEADER.size:
            raise ExportError(f"entries.bin: cut short at byte {position}")
        index, length = RECORD_HEADER.unpack(header)
        if length > MAX_LEAF_BYTES:
            raise ExportError(
                f"entries.bin: the record at byte {position} claims a {length}-byte leaf "
                f"(at most {MAX_LEAF_BYTES})"
            )
        body = stream.read(length + merkle.HASH_SIZE)
        if len(body) != length + merkle.HASH_SIZE:
            raise ExportError(f"entries.bin: the record at byte {position} is cut short")
        position += RECORD_HEADER.size + len(body)
        yield Record(index, body[:length], body[length:])


@dataclass
class Report:
    """What verification found. ``ok`` only if every checkpoint matched the entries and no
    entry is out of place; ``first_bad`` is the first index found bad, and where the export
    cannot say which entry of a range was altered, ``bad_range`` is that range."""

    ok: bool = False
    entries: int = 0
    origin: str = ""
    checkpoints: int = 0
    verified_size: int = 0  # entries [0, verified_size) match a signed checkpoint
    first_bad: int | None = None
    bad_range: tuple[int, int] | None = None
    problem: str = ""
    kinds: dict[str, int] = field(default_factory=dict)
    chain: handover.KeyChain | None = None  # the trail keys followed, once step 1 passed

    @property
    def uncovered(self) -> int:
        """Entries after the latest checkpoint: genuine, or not, no signature says yet."""
        return max(0, self.entries - self.verified_size)

    def summary(self) -> str:
        if self.ok:
            tail = (
                f"; {self.uncovered} later entries are not covered by a checkpoint yet"
                if self.uncovered
                else ""
            )
            keys = ""
            if self.chain is not None and self.chain.handovers:
                keys = f"; trail keys followed: {self.chain.describe()}"
            return (
                f"OK: {self.entries} entries; the first {self.verified_size} match "
                f"{self.checkpoints} signed checkpoints of {self.origin}{tail}{keys}"
            )
        if self.first_bad is not None:
            return f"BAD at index {self.first_bad}: {self.problem}"
        if self.bad_range is not None:
            start, end = self.bad_range
            return f"BAD at index {start} to {end - 1}: {self.problem}"
        return f"BAD: {self.problem}"


def open_checkpoints(
    notes: Sequence[tuple[str, bytes]], key: checkpoint.NoteKey
) -> tuple[list[checkpoint.Checkpoint], handover.KeyChain]:
    """Every note verified with the key in force at its size, starting from ``key`` and
    following hand-overs (hub/trail/handover.py), by size, and the chain of keys followed;
    raises CheckpointError naming the first note that does not verify, or two that
    disagree."""
    opened: dict[int, checkpoint.Checkpoint] = {}
    origin = ""
    verified, chain = handover.follow(notes, key)
    for name, point in verified:
        if origin and point.origin != origin:
            raise checkpoint.CheckpointError(
                f"{name}: origin {point.origin!r}; the other checkpoints say {origin!r}"
            )
        origin = point.origin
        earlier = opened.get(point.size)
        if earlier is not None and earlier.root != point.root:
            raise checkpoint.CheckpointError(
                f"{name}: two checkpoints signed at size {point.size} name different roots"
            )
        opened[point.size] = point
    return [opened[size] for size in sorted(opened)], chain


def verify(
    records: Iterable[Record],
    notes: Sequence[tuple[str, bytes]],
    key: checkpoint.NoteKey,
    declared_entries: int | None = None,
) -> Report:
    """Check an export: the steps below, stopping at the first fault."""
    report = Report()
    # 1. Every checkpoint is signed by the hub's trail key in force at its size: the key
    # given, then each key a hand-over named; all name one log.
    try:
        points, chain = open_checkpoints(notes, key)
    except checkpoint.CheckpointError as exc:
        report.problem = str(exc)
        return report
    report.chain = chain
    # a hand-over checkpoint's last entry records it: the new key's digest, by size
    handed_over = {h.size: h.new for h in chain.handovers}
    report.checkpoints = len(points)
    report.origin = points[0].origin if points else ""
    pending = iter(points)
    target = next(pending, None)
    # skip a checkpoint of the empty tree: it covers nothing
    while target is not None and target.size == 0:
        target = next(pending, None)
    leaves, stored = merkle.RootBuilder(), merkle.RootBuilder()
    first_mismatch: int | None = None
    expected = 0
    try:
        for record in records:
            # 2. Entries run 0, 1, 2, ... with none missing, repeated or out of order.
            if record.index != expected:
                report.first_bad = expected
                report.problem = (
                    f"entry {expected} is missing (the next entry is {record.index})"
                    if record.index > expected
                    else f"entry {record.index} appears again, or out of order, after "
                    f"entry {expected - 1}"
                )
                report.entries = expected
                return report
            # 3. Each leaf is a TrailEvent of a known kind.
            try:
                event = trail.decode(record.leaf)
            except trail.TrailError as exc:
                report.first_bad, report.problem = expected, str(exc)
                report.entries = expected
                return report
            report.kinds[event.kind] = report.kinds.get(event.kind, 0) + 1
            # 3a. The entry before a hand-over checkpoint is the config-changed leaf
            # recording it, with the new key's digest.
            new_key = handed_over.get(expected + 1)
            if new_key is not None and not (
                event.kind == "config-changed"
                and event.config_digest == handover.key_digest(new_key)
            ):
                report.first_bad, report.entries = expected, expected
                report.problem = (
                    f"the hand-over checkpoint at {expected + 1} entries does not end with "
                    f"the config-changed entry recording its new key {handover.short(new_key)}"
                )
                return report
            digest = merkle.leaf_hash(record.leaf)
            leaves.add(digest)
            stored.add(record.stored_hash)
            if first_mismatch is None and digest != record.stored_hash:
                first_mismatch = expected
            expected += 1
            # 4. At each checkpoint's size, the root of the entries so far is the signed root.
            if target is not None and expected == target.size:
                if not _matches(report, target, leaves, stored, first_mismatch):
                    report.entries = expected
                    return report
                target = next(pending, None)
    except ExportError as exc:
        report.first_bad, report.problem = expected, str(exc)
        report.entries = expected
        return report
    report.entries = expected
    # 5. No checkpoint covers more entries than the export holds.
    if target is not None:
        report.first_bad = expected
        report.problem = (
            f"the export ends after {expected} entries, but a checkpoint signed the trail "
            f"at {points[-1].size}"
        )
        return report
    # 6. The manifest's count, if given, is the count found (a copy cut short at a record
    # boundary after the latest checkpoint would otherwise pass unnoticed).
    if declared_entries is not None and declared_entries != expected:
        report.first_bad = min(expected, declared_entries)
        report.problem = (
            f"the manifest says {declared_entries} entries; entries.bin holds {expected}"
        )
        return report
    if not points or (report.verified_size == 0 and expected):
        report.problem = "no signed checkpoint covers any entry: nothing can be verified"
        return report
    report.ok = True
    return report


def _matches(
    report: Report,
    target: checkpoint.Checkpoint,
    leaves: merkle.RootBuilder,
    stored: merkle.RootBuilder,
    first_mismatch: int | None,
) -> bool:
    if leaves.root() == target.root:
        report.verified_size = target.size
        return True
    if stored.root() == target.root and first_mismatch is not None:
        # the stored hashes are what was signed, so the first leaf that no longer hashes to
        # its stored hash is the first altered one
        report.first_bad = first_mismatch
        report.problem = (
            f"the entry does not hash to the leaf hash recorded when it was appended "
            f"(checkpoint at {target.size} entries)"
        )
        return False
    report.bad_range = (report.verified_size, target.size)
    report.problem = (
        f"the entries do not match the checkpoint signed at {target.size} entries, and "
        f"their stored hashes were changed too, so the export cannot say which of these "
        f"entries was altered, removed, reordered or inserted"
    )
    return False
