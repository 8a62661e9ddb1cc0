"""The EDIFACT residue: a message's segments that no typed field models, kept so that
EDIFACT -> protobuf -> EDIFACT gives back the same segments in the same order.

Reading (``compute``): the typed message is written back with the hub's own writer (W), and
the partner's content segments (O, UNH..UNT exclusive) are matched to W in order, greedily, by
equality: each segment of O takes the first segment of W after the last one taken that equals
it (a dictionary of positions per segment and a binary search: O(n log n), never a quadratic
diff). Segments of O left unmatched are the residue, each with its position in O; segments of
W left unmatched are ``suppressed`` (the partner wrote that typed value in another form, which
the residue holds). The shape of each segment of W (tag and first code, never a value) is
kept too.

Writing (``apply``): the writer's output for the typed fields as they are now (W') is aligned
to the recorded shapes, in order. Then O is rebuilt: its residue positions take the residue
segments, every other position takes the next slot of W that is not suppressed, and a slot
gives what W' put there. When nothing changed since reading, W' is W and the result is O,
exactly: the matched segments are equal and in the same order on both sides. When typed fields
were cut (a sharing policy), their slots give nothing; a typed segment with no recorded slot
follows the slot of the segment before it. The caller checks the result against the directory
and refuses what is not a valid message.

Segments are compared as ISO 9735 writes them: trailing empty components and trailing empty
data elements do not count (they are omitted on writing).

What it must never do: interpret a residue segment, or let a tag that is not three capital
letters through (a tag is not escaped on output, so anything else could forge segments).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence

from adapters.edifact.syntax import Segment
from hub.core.errors import TranslationError
from hub.pb.customs_hub.v1 import declaration_pb2

EdifactResidue = declaration_pb2.EdifactResidue
EdifactSegment = declaration_pb2.EdifactSegment
EdifactElement = declaration_pb2.EdifactElement
_TAG = re.compile(r"[A-Z]{3}")
# Service segments never belong in a message's content (UNS, the section control, does).
SERVICE_TAGS = frozenset({"UNA", "UNB", "UNG", "UNH", "UNT", "UNE", "UNZ"})

Key = tuple[str, tuple[tuple[str, ...], ...]]


def key(seg: Segment) -> Key:
    """The segment as ISO 9735 writes it: without trailing empty components and elements."""
    if all(element and element[-1] for element in seg.elements):
        return seg.tag, seg.elements  # nothing to trim (nearly every segment)
    elements = [_trimmed(element) for element in seg.elements]
    while elements and not elements[-1]:
        elements.pop()
    return seg.tag, tuple(elements)


def _trimmed(element: tuple[str, ...]) -> tuple[str, ...]:
    end = len(element)
    while end and not element[end - 1]:
        end -= 1
    return element[:end]


# Segments the writers make whose first component is a qualifier or a D.96B code (RFF 1153,
# NAD 3035, GIS 7365, ...). The others begin with a value (ERC 9321 a finding code, CST 1496
# an item number, PAC 7224 a package count): their shape is the tag alone, so that a policy
# that keeps the residue but cuts those fields does not send them in a shape.
QUALIFIED = frozenset(
    {"BGM", "DTM", "FTX", "GIS", "EQD", "NAD", "CTA", "RFF", "ERP", "LOC", "MEA", "DOC", "MOA",
     "UNS", "TAX", "COM", "TDT", "CUX"}
)  # fmt: skip


def shape(seg: Segment) -> str:
    """Tag and the first component of the first element where that is a qualifier or code
    (e.g. RFF:ABT); the tag alone where it is a value (``QUALIFIED``)."""
    if seg.tag not in QUALIFIED:
        return seg.tag
    first = seg.elements[0][0] if seg.elements and seg.elements[0] else ""
    return f"{seg.tag}:{first}"


def compute(original: Sequence[Segment], written: Sequence[Segment]) -> EdifactResidue:
    """The residue that turns ``written`` (the writer's output for the typed message) back into
    ``original`` (the partner's content segments)."""
    positions: dict[Key, list[int]] = {}
    for index, seg in enumerate(written):
        positions.setdefault(key(seg), []).append(index)
    wire: list[bytes] = []
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
        wire.append(_field(b"\x0a", _segment_wire(seg, position)))  # 1 segments
    suppressed = b"".join(_varint(i) for i, taken in enumerate(matched) if not taken)
    if suppressed:
        wire.append(_field(b"\x12", suppressed))  # 2 suppressed, packed
    wire.extend(_field(b"\x1a", shape(seg).encode()) for seg in written)  # 3 written_shapes
    return EdifactResidue.FromString(b"".join(wire))


# The residue is built as protobuf wire bytes and parsed once (in C): a third of the time of
# building a message object per segment and element in Python, which matters because a CUSDEC
# keeps most of its segments in the residue and every EDIFACT decode computes one.
_VARINTS = [bytes([i]) for i in range(0x80)]


def _varint(value: int) -> bytes:
    if value < 0x80:
        return _VARINTS[value]
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: its key byte (field number << 3 | 2), length, payload."""
    return tag + _varint(len(payload)) + payload


def _segment_wire(seg: Segment, position: int) -> bytes:
    """EdifactSegment: 1 position (varint, omitted when 0), 2 tag, 3 elements; each
    EdifactElement: 1 components."""
    parts = [b"\x08" + _varint(position)] if position else []
    parts.append(_field(b"\x12", seg.tag.encode()))
    for element in seg.elements:
        components = b"".join(_field(b"\x0a", c.encode()) for c in element)
        parts.append(_field(b"\x1a", components))
    return b"".join(parts)


def to_proto(seg: Segment, position: int) -> declaration_pb2.EdifactSegment:
    return EdifactSegment(
        position=position,
        tag=seg.tag,
        elements=[EdifactElement(components=element) for element in seg.elements],
    )


def from_proto(kept: declaration_pb2.EdifactSegment) -> Segment:
    return Segment(kept.tag, tuple(tuple(e.components) for e in kept.elements))


def _check_tags(residue: EdifactResidue, kind: str) -> None:
    for kept in residue.segments:
        if not _TAG.fullmatch(kept.tag) or kept.tag in SERVICE_TAGS:
            raise TranslationError(
                f"{kind} cannot be written as EDIFACT: its residue segment at position "
                f"{kept.position} has the tag {kept.tag[:8]!r}; a content segment tag is three "
                "capital letters and not a service segment",
                reason="schema-invalid",
                path="edifact_residue",
            )


class _Slot:
    """What one recorded segment of W gives now: the segment of W' aligned to it, if any, then
    the segments of W' with no slot of their own that follow it."""

    __slots__ = ("aligned", "followers")

    def __init__(self) -> None:
        self.aligned: Segment | None = None
        self.followers: list[Segment] = []


def _slots(
    residue: EdifactResidue, written: Sequence[Segment]
) -> tuple[list[Segment], list[_Slot]]:
    """(segments of W' before any aligned one, the slots), aligning W' to the recorded shapes
    in order, greedily."""
    recorded = residue.written_shapes
    slots = [_Slot() for _ in recorded]
    leading: list[Segment] = []
    positions: dict[str, list[int]] = {}
    for index, recorded_shape in enumerate(recorded):
        positions.setdefault(recorded_shape, []).append(index)
    last = -1
    for seg in written:
        candidates = positions.get(shape(seg))
        if candidates:
            at = bisect.bisect_right(candidates, last)
            if at < len(candidates):
                last = candidates[at]
                slots[last].aligned = seg
                continue
        (slots[last].followers if last >= 0 else leading).append(seg)
    return leading, slots


def _check_size(residue: EdifactResidue, kind: str, most: int) -> None:
    """A residue no message of ``most`` segments could have left is refused before any work
    (a partner's protobuf sets these lists; apply's time and memory follow their lengths)."""
    for name, count in (
        ("segments", len(residue.segments)),
        ("suppressed", len(residue.suppressed)),
        ("written_shapes", len(residue.written_shapes)),
    ):
        if count > most:
            raise TranslationError(
                f"{kind} cannot be written as EDIFACT: its residue holds {count} {name}; "
                f"the limit is {most}",
                reason="limit-exceeded",
                path=f"edifact_residue.{name}",
            )


def apply(
    residue: EdifactResidue, written: Sequence[Segment], kind: str, most: int = 300_000
) -> list[Segment]:
    """``written`` (the typed fields as the writer gives them now) with the residue applied;
    see the module docstring. A residue segment whose tag could not be written is refused
    (schema-invalid), named by its position; a residue with more than ``most`` entries in a
    list is refused (limit-exceeded). Time and memory follow the lists' lengths, never the
    positions' values: a position past the last slot puts its segment after the slots."""
    _check_size(residue, kind, most)
    _check_tags(residue, kind)
    leading, slots = _slots(residue, written)
    suppressed = frozenset(residue.suppressed)
    kept = sorted(residue.segments, key=lambda s: s.position)  # stable for equal positions
    out: list[Segment] = []
    next_kept = next_slot = 0
    position = 0
    while next_kept < len(kept) or next_slot < len(slots):
        if next_kept < len(kept) and (
            kept[next_kept].position <= position or next_slot >= len(slots)
        ):
            # at its position, or past the last slot (no hole left to count positions with)
            out.append(from_proto(kept[next_kept]))
            next_kept += 1
        elif next_slot < len(slots):
            # A hole of O: the slots up to and including the next one not suppressed.
            if next_slot == 0:
                out.extend(leading)
            while next_slot < len(slots):
                slot = slots[next_slot]
                hole = next_slot not in suppressed
                next_slot += 1
                if slot.aligned is not None and hole:
                    out.append(slot.aligned)
                out.extend(slot.followers)
                if hole:
                    break
        position += 1
    if not slots:
        out.extend(leading)  # no shapes recorded: the typed segments after the residue
    return out


__all__ = ["EdifactResidue", "apply", "compute", "key", "shape"]
