"""Anti-entropy between hubs' registries of AEO statuses (pure core).

A hub's list of the AEOs it issued is, for one partner, the sorted (aeo_id, revision) pairs of
those AEOs as that partner may see them. Its digest is the count and the RFC 6962 Merkle root
(hub/trail/merkle.py) over one leaf per pair, ``leaf(aeo_id, revision)``. A partner compares the
digest with its own registry of that hub's AEOs; when they differ, ``Reconciler`` bisects the
ids' range (the asked hub names each range's middle id) until each differing range is small
enough to be listed, then names the ids to fetch with a Query. Everything is bounded: ids per
Query, ranges per Snapshot call, levels of bisection, ids fetched per run. docs/registry-sync.md
describes the protocol.

Ids are ordered as Python orders ``str``, by code point, which is the order of their UTF-8
bytes; no store's collation decides anything here (``sorted_pairs``).

What it must never do: open a socket, a file or a database session; trust the asked hub's
answer for anything beyond which ids to ask for (what it then sends is verified as any
envelope).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hub.core.errors import HubError, LimitError, Status
from hub.core.messages import MAX_KEY_LENGTH
from hub.trail import merkle

# At most this many AEO ids in one AeoQuery: an answer of 1,000 statuses signed one by one is
# some 0.5 MB and a few tens of milliseconds of signing, well inside the envelope size limit and
# a partner call's deadline.
MAX_QUERY_IDS = 1000
# At most this many ranges in one AeoSnapshotRequest, and so digests in one answer.
MAX_RANGES = 64
# A range of at most this many entries is listed in the answer (AeoRangeDigest.entries)
# rather than split again: 64 listed ranges are some 0.5 MB.
LIST_ENTRIES = 256
# Levels of bisection in one sync: each halves the asked hub's entries in a range, so 32
# levels list a range of 256 x 2^32 entries, far beyond any AEO programme.
MAX_ROUNDS = 32
# Snapshot calls and ids fetched in one sync; a sync stopped by them reports that it is not
# complete, and the next one goes on from what was fetched.
MAX_SNAPSHOT_CALLS = 512
MAX_FETCH = 20 * MAX_QUERY_IDS
# The leaf's domain: a leaf of this list can be taken for no other hub structure's leaf.
LEAF_DOMAIN = b"customs-hub/aeo-entry/v1\x00"
# The namespace of the message ids of AEO statuses sent as answers (``status_message_id``).
ANSWER_NAMESPACE = b"customs-hub/aeo-answer/v1\x00"

Pair = tuple[str, int]


class QueryError(HubError):
    """A query or snapshot request that breaks its rules, or an answer that does."""

    status = Status.INVALID_ARGUMENT
    default_reason = "query-invalid"


class AnswerError(HubError):
    """A partner's answer to our query or snapshot request that does not answer it: refused
    whole, nothing of it received."""

    status = Status.FAILED_PRECONDITION
    default_reason = "answer-invalid"


@dataclass(frozen=True)
class IdRange:
    """from_id <= id < to_id; "" leaves that end open."""

    from_id: str = ""
    to_id: str = ""

    def holds(self, aeo_id: str) -> bool:
        return aeo_id >= self.from_id and (not self.to_id or aeo_id < self.to_id)

    def __str__(self) -> str:
        return f"[{self.from_id or '-inf'}, {self.to_id or '+inf'})"


WHOLE = IdRange()


@dataclass(frozen=True)
class Digest:
    count: int
    root: bytes


def leaf(aeo_id: str, revision: int) -> bytes:
    """The canonical encoding of one pair: the domain, the id's UTF-8 bytes with their length
    (2 bytes, big-endian), and the revision (8 bytes, big-endian)."""
    data = aeo_id.encode("utf-8")
    if len(data) >= 1 << 16 or not 0 <= revision < 1 << 64:
        raise QueryError(f"an AEO entry ({len(data)} bytes, revision {revision}) cannot be a leaf")
    return LEAF_DOMAIN + len(data).to_bytes(2, "big") + data + revision.to_bytes(8, "big")


def sorted_pairs(pairs: Iterable[Pair]) -> list[Pair]:
    """Pairs in id order, each id once (the highest revision kept, should one repeat)."""
    best: dict[str, int] = {}
    for aeo_id, revision in pairs:
        if revision >= best.get(aeo_id, -1):
            best[aeo_id] = revision
    return sorted(best.items())


def digest(pairs: Sequence[Pair]) -> Digest:
    """Count and Merkle root of ``pairs``, which must be in id order, each id once."""
    for before, after in itertools.pairwise(pairs):
        if before[0] >= after[0]:
            raise QueryError("AEO entries must be in id order, each id once")
    return Digest(len(pairs), merkle.root([merkle.leaf_hash(leaf(i, r)) for i, r in pairs]))


def within(pairs: Sequence[Pair], span: IdRange) -> Sequence[Pair]:
    """The pairs (in id order) that ``span`` holds."""
    start = bisect.bisect_left(pairs, (span.from_id, -1))
    end = len(pairs) if not span.to_id else bisect.bisect_left(pairs, (span.to_id, -1))
    return pairs[start:end]


def middle(pairs: Sequence[Pair]) -> str:
    """Where a range of these pairs splits: the id at index count / 2 ("" for fewer than 2)."""
    return pairs[len(pairs) // 2][0] if len(pairs) >= 2 else ""


def status_message_id(issuer: str, recipient: str, aeo_id: str, revision: int) -> str:
    """The message id of the envelope carrying revision ``revision`` of ``aeo_id`` from
    ``issuer`` to ``recipient`` in an answer: a UUIDv8 (RFC 9562) of the SHA-256 of them, so
    the same revision answered twice is the same message and the asker keeps it once."""
    name = "\x00".join((issuer, recipient, aeo_id, str(revision))).encode("utf-8")
    value = int.from_bytes(hashlib.sha256(ANSWER_NAMESPACE + name).digest()[:16], "big")
    value &= ~(0xF << 76)
    value |= 0x8 << 76  # version 8
    value &= ~(0b11 << 62)
    value |= 0b10 << 62  # variant
    return str(uuid.UUID(int=value))


def check_ids(aeo_ids: Sequence[str]) -> list[str]:
    """The ids of a query, each once in the order given; refused when there are more than
    ``MAX_QUERY_IDS`` (``limit-exceeded``) or one is empty, over 128 characters or not
    printable (``query-invalid``)."""
    if len(aeo_ids) > MAX_QUERY_IDS:
        raise LimitError(
            f"a query may name at most {MAX_QUERY_IDS} AEO ids; this one names {len(aeo_ids)}"
        )
    if not aeo_ids:
        raise QueryError("a query must name at least one AEO id")
    for aeo_id in aeo_ids:
        if not aeo_id or len(aeo_id) > MAX_KEY_LENGTH or not aeo_id.isprintable():
            raise QueryError(
                f"an AEO id must be 1 to {MAX_KEY_LENGTH} printable characters; one of "
                f"{len(aeo_id)} characters is not"
            )
    return list(dict.fromkeys(aeo_ids))


def check_ranges(ranges: Sequence[IdRange]) -> list[IdRange]:
    """The ranges of a snapshot request (none: the whole list); refused when there are more than
    ``MAX_RANGES`` (``limit-exceeded``), or one is empty, ends in an id no AEO can have, or
    shares an id with another (``query-invalid``): disjoint ranges cost the asked hub at most
    one pass over its list, however many are asked."""
    if len(ranges) > MAX_RANGES:
        raise LimitError(
            f"a snapshot request may name at most {MAX_RANGES} ranges; this one names {len(ranges)}"
        )
    for span in ranges:
        for end in (span.from_id, span.to_id):
            if len(end) > MAX_KEY_LENGTH or not end.isprintable():
                raise QueryError(
                    f"a range's ends are at most {MAX_KEY_LENGTH} printable characters"
                )
        if span.to_id and span.to_id <= span.from_id:
            raise QueryError(f"the range {span} holds no id")
    ordered = sorted(ranges, key=lambda r: r.from_id)
    for before, after in itertools.pairwise(ordered):
        if not before.to_id or before.to_id > after.from_id:
            raise QueryError(f"the ranges {before} and {after} overlap")
    return list(ranges) or [WHOLE]


def range_digests(
    rows: Iterable[Pair], fields: Sequence[str], ranges: Sequence[IdRange]
) -> list[RangeDigest]:
    """The asked hub's digests of ``ranges`` (checked: disjoint) of its AEOs ``rows`` as a
    partner sharing ``fields`` sees them: the visible pairs sorted once, one digest per range.
    CPU-bound over the whole list: run off the event loop."""
    seen = (visible_pair(aeo_id, revision, fields) for aeo_id, revision in rows)
    pairs = sorted_pairs(p for p in seen if p is not None)
    return [RangeDigest.of(pairs, span) for span in ranges]


@dataclass(frozen=True)
class RangeDigest:
    """What the asked hub holds in one range (AeoRangeDigest)."""

    span: IdRange
    count: int
    root: bytes
    middle: str = ""
    entries: tuple[Pair, ...] | None = None  # listed when count <= LIST_ENTRIES

    @classmethod
    def of(cls, pairs: Sequence[Pair], span: IdRange) -> RangeDigest:
        """The digest of the pairs ``span`` holds (``pairs`` in id order, each id once)."""
        inside = within(pairs, span)
        made = digest(inside)
        entries = tuple(inside) if len(inside) <= LIST_ENTRIES else None
        return cls(span, made.count, made.root, middle(inside), entries)


@dataclass
class Reconciler:
    """The asker's side of a sync, sans I/O: ``ranges()`` to ask about, ``take()`` the asked
    hub's digests of them, until ``done``; then ``fetch`` names the ids to ask for with Query
    (missing here, or here at an older revision), ``only_here`` and ``newer_here`` what this
    side holds that the other does not list (reported, not changed).

    Each range that differs is split at the middle id the asked hub names, so both halves hold
    at most about half its entries; a range of at most ``LIST_ENTRIES`` comes listed and is
    compared entry by entry. A digest that does not answer the range asked, or a split that
    would not shrink, is refused (``answer-invalid``): the asked hub cannot make the asker
    loop.
    """

    local: Sequence[Pair]  # this side's pairs for the asked hub's AEOs, in id order
    pending: list[IdRange] = field(default_factory=lambda: [WHOLE])
    fetch: list[str] = field(default_factory=list)
    only_here: list[str] = field(default_factory=list)
    newer_here: list[str] = field(default_factory=list)
    rounds: int = 0
    compared: int = 0
    top: RangeDigest | None = None  # the asked hub's digest of the whole list

    @property
    def done(self) -> bool:
        return not self.pending

    def ranges(self) -> list[IdRange]:
        """The next call's ranges (at most MAX_RANGES), taken off the pending ones."""
        asked, self.pending = self.pending[:MAX_RANGES], self.pending[MAX_RANGES:]
        return asked

    def take(self, asked: Sequence[IdRange], answers: Sequence[RangeDigest]) -> None:
        """Compare the asked hub's digests of ``asked`` with this side's pairs."""
        if len(answers) != len(asked) or any(
            a.span != s for a, s in zip(answers, asked, strict=False)
        ):
            raise AnswerError("the snapshot does not answer the ranges asked, in order")
        split: list[IdRange] = []
        for answer in answers:
            self.compared += 1
            if answer.span == WHOLE:
                self.top = answer
            mine = within(self.local, answer.span)
            if Digest(answer.count, answer.root) == digest(mine):
                continue
            if answer.entries is not None:
                self._compare(mine, answer)
                continue
            split.extend(self._split(answer))
        if split:
            self.rounds += 1
            if self.rounds > MAX_ROUNDS:
                raise AnswerError(f"the ranges still differ after {MAX_ROUNDS} levels of bisection")
        self.pending.extend(split)

    def _compare(self, mine: Sequence[Pair], answer: RangeDigest) -> None:
        listed = sorted_pairs(answer.entries or ())
        theirs = dict(listed)
        if (
            len(listed) != answer.count
            or any(not answer.span.holds(i) for i in theirs)
            or digest(listed) != Digest(answer.count, answer.root)
        ):
            raise AnswerError(
                f"the entries listed for {answer.span} are not the range's {answer.count}"
            )
        held = dict(mine)
        for aeo_id, revision in sorted(theirs.items()):
            if aeo_id not in held or held[aeo_id] < revision:
                self.fetch.append(aeo_id)
            elif held[aeo_id] > revision:
                self.newer_here.append(aeo_id)
        self.only_here.extend(i for i in held if i not in theirs)

    @staticmethod
    def _split(answer: RangeDigest) -> list[IdRange]:
        span, cut = answer.span, answer.middle
        if (
            answer.count <= LIST_ENTRIES
            or not cut
            or cut <= span.from_id
            or (span.to_id and cut >= span.to_id)
        ):
            raise AnswerError(
                f"the digest of {span} ({answer.count} entries) neither lists them nor names a "
                "middle id inside the range"
            )
        return [IdRange(span.from_id, cut), IdRange(cut, span.to_id)]


def visible_pair(aeo_id: str, revision: int, fields: Sequence[str]) -> Pair | None:
    """The (aeo_id, revision) a partner sees of one AEO when only ``fields`` of its status are
    shared with it (() shares the whole status): None when the id is not shared, revision 0
    when the revision is not."""
    if not fields:
        return aeo_id, revision
    if "aeo_id" not in fields:
        return None
    return aeo_id, revision if "revision" in fields else 0
