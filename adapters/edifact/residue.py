"""The EDIFACT residue: a message's segments that no typed field models, kept so that
EDIFACT -> protobuf -> EDIFACT gives back the same segments in the same order.

Reading: the typed message is written back with the hub's own writer, and the partner's
content segments (UNH..UNT exclusive) are matched to the written ones in order, greedily, by
equality: each original segment takes the first written segment after the last one taken that
equals it (a dictionary of positions per segment and a binary search, so O(n log n) for n
segments, never a quadratic diff). Originals left unmatched are the residue, each with its
position; written segments left unmatched are ``suppressed``. Writing is the writer's output
without the suppressed segments, the residue inserted at its positions: exactly the original
by construction, since the matched segments are equal and in the same order on both sides.

When the typed fields no longer give the segments the residue was computed against (a sharing
policy cut some; ``written_sha256`` tells), nothing is suppressed: the typed segments are all
written and the residue is inserted at its positions; the caller checks the result against the
directory and refuses what is not a valid message.

Segments are compared as ISO 9735 writes them: trailing empty components and trailing empty
data elements do not count (they are omitted on writing).

What it must never do: interpret a residue segment, or write a tag that is not three capital
letters (a tag is not escaped on output, so anything else could forge segments).
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Sequence

from adapters.edifact.syntax import Segment
from hub.core.errors import TranslationError
from hub.pb.customs_hub.v1 import declaration_pb2

EdifactResidue = declaration_pb2.EdifactResidue
EdifactSegment = declaration_pb2.EdifactSegment
_TAG = re.compile(r"[A-Z]{3}")
# Service segments never belong in a message's content (UNS, the section control, does).
SERVICE_TAGS = frozenset({"UNA", "UNB", "UNG", "UNH", "UNT", "UNE", "UNZ"})

Key = tuple[str, tuple[tuple[str, ...], ...]]


def key(seg: Segment) -> Key:
    """The segment as ISO 9735 writes it: without trailing empty components and elements."""
    elements = [_trimmed(element) for element in seg.elements]
    while elements and not elements[-1]:
        elements.pop()
    return seg.tag, tuple(elements)


def _trimmed(element: tuple[str, ...]) -> tuple[str, ...]:
    end = len(element)
    while end and not element[end - 1]:
        end -= 1
    return element[:end]


def written_sha256(written: Sequence[Segment]) -> bytes:
    digest = hashlib.sha256()
    for seg in written:
        tag, elements = key(seg)
        digest.update(repr((tag, elements)).encode())
    return digest.digest()


def compute(original: Sequence[Segment], written: Sequence[Segment]) -> EdifactResidue:
    """The residue that turns ``written`` (the writer's output for the typed message) back into
    ``original`` (the partner's content segments)."""
    positions: dict[Key, list[int]] = {}
    for index, seg in enumerate(written):
        positions.setdefault(key(seg), []).append(index)
    residue = EdifactResidue(written_sha256=written_sha256(written))
    matched = bytearray(len(written))
    last = -1
    for position, seg in enumerate(original):
        candidates = positions.get(key(seg))
        if candidates:
            at = bisect.bisect_right(candidates, last)
            if at < len(candidates):
                last = candidates[at]
                matched[last] = 1
                continue
        residue.segments.append(to_proto(seg, position))
    residue.suppressed.extend(i for i, taken in enumerate(matched) if not taken)
    return residue


def to_proto(seg: Segment, position: int) -> declaration_pb2.EdifactSegment:
    out = EdifactSegment(position=position, tag=seg.tag)
    for element in seg.elements:
        out.elements.add(components=element)
    return out


def from_proto(kept: declaration_pb2.EdifactSegment) -> Segment:
    return Segment(kept.tag, tuple(tuple(e.components) for e in kept.elements))


def apply(residue: EdifactResidue, written: Sequence[Segment], kind: str) -> list[Segment]:
    """``written`` with the residue applied (see the module docstring). A residue segment whose
    tag could not be written is refused (schema-invalid), named by its position."""
    for kept in residue.segments:
        if not _TAG.fullmatch(kept.tag) or kept.tag in SERVICE_TAGS:
            raise TranslationError(
                f"{kind} cannot be written as EDIFACT: its residue segment at position "
                f"{kept.position} has the tag {kept.tag[:8]!r}; a content segment tag is three "
                "capital letters and not a service segment",
                reason="schema-invalid",
                path="edifact_residue",
            )
    suppressed: frozenset[int] = frozenset()
    if residue.suppressed and residue.written_sha256 == written_sha256(written):
        suppressed = frozenset(residue.suppressed)
    kept_segments = sorted(residue.segments, key=lambda s: s.position)  # stable for ties
    out: list[Segment] = []
    next_kept = 0
    for index, seg in enumerate(written):
        if index in suppressed:
            continue
        while next_kept < len(kept_segments) and kept_segments[next_kept].position <= len(out):
            out.append(from_proto(kept_segments[next_kept]))
            next_kept += 1
        out.append(seg)
    out.extend(from_proto(s) for s in kept_segments[next_kept:])
    return out


__all__ = ["EdifactResidue", "apply", "compute", "key", "written_sha256"]
