"""One message's way across administrations as a tree of spans with timings (``customs-hub
demo --trace``): the sender's trace, and each receiver's own trace joined to it by its link.

A receiver never makes the sender's span its parent (docs/telemetry.md): its ``receive`` span
roots a trace of its own with a link to the sender's span. Here the two are drawn as one tree,
the receiver's under the span its link names, marked as linked, so a reader sees where the
time went: in the sender's outbox, on the wire, or in the receiver's store.

Times are milliseconds from the start of the sender's root span. Every hub of the demo runs on
this machine, so their clocks agree; between administrations they need not.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from opentelemetry.sdk.trace import ReadableSpan

from hub.app.telemetry import ATTEMPT, FORMAT, MESSAGE_ID, OUTCOME, PARTNER, REASON

# attributes shown after a span's name, in this order
SHOWN = (PARTNER, FORMAT, ATTEMPT, OUTCOME, REASON)


@dataclass(frozen=True)
class Spans:
    """The finished spans of one hub (``party``)."""

    party: str
    spans: Sequence[ReadableSpan]


def _start(span: ReadableSpan) -> int:
    return span.start_time or 0


def _end(span: ReadableSpan) -> int:
    return span.end_time or _start(span)


def _ids(span: ReadableSpan) -> tuple[int, int]:
    context = span.get_span_context()
    return (context.trace_id, context.span_id) if context is not None else (0, 0)


def _label(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    shown = [f"{key.rsplit('.', 1)[-1]} {attributes[key]!r}" for key in SHOWN if key in attributes]
    shown = [text.replace("'", "") for text in shown]  # strings as they are, numbers as digits
    text = span.name + (f" ({', '.join(shown)})" if shown else "")
    if not span.status.is_ok:
        text += " [error]"
    return text


def message_tree(message_id: str, hubs: Sequence[Spans]) -> list[str]:
    """Lines drawing the trace of ``message_id`` from its sender's root span down, with every
    receiver's trace linked to one of its spans under that span; empty when no hub has a root
    span for it."""
    owner: dict[tuple[int, int], tuple[str, ReadableSpan]] = {}
    children: dict[tuple[int, int], list[tuple[str, ReadableSpan]]] = defaultdict(list)
    roots: list[tuple[str, ReadableSpan]] = []
    for hub in hubs:
        for span in hub.spans:
            owner[_ids(span)] = (hub.party, span)
    for party, span in owner.values():
        if span.parent is not None:
            children[(span.parent.trace_id, span.parent.span_id)].append((party, span))
            continue
        roots.append((party, span))
        for link in span.links[:1]:  # a receiver's root: drawn under the span it links to
            children[(link.context.trace_id, link.context.span_id)].append((party, span))
    sender = [
        (party, span)
        for party, span in roots
        if (span.attributes or {}).get(MESSAGE_ID) == message_id and not span.links
    ]
    if not sender:
        return []
    party, root = min(sender, key=lambda ps: _start(ps[1]))
    origin = _start(root)
    lines = [f"{'hub':<4}{'start ms':>9}{'took ms':>9}  span"]
    _draw(party, root, "", "", children, origin, lines, linked=False, seen=set())
    return lines


def _draw(
    party: str,
    span: ReadableSpan,
    lead: str,
    branch: str,
    children: Mapping[tuple[int, int], list[tuple[str, ReadableSpan]]],
    origin: int,
    lines: list[str],
    *,
    linked: bool,
    seen: set[tuple[int, int]],
) -> None:
    if _ids(span) in seen:  # links could make a loop; each span is drawn once
        return
    seen.add(_ids(span))
    start = (_start(span) - origin) / 1e6
    took = (_end(span) - _start(span)) / 1e6
    mark = "(linked, own trace) " if linked else ""
    lines.append(f"{party:<4}{start:>9.1f}{took:>9.1f}  {lead}{branch}{mark}{_label(span)}")
    below = sorted(children.get(_ids(span), []), key=lambda ps: _start(ps[1]))
    inner = lead + ("   " if branch == "└─ " else "│  " if branch else "")
    for n, (child_party, child) in enumerate(below):
        last = n == len(below) - 1
        _draw(
            child_party,
            child,
            inner,
            "└─ " if last else "├─ ",
            children,
            origin,
            lines,
            linked=child.parent is None,
            seen=seen,
        )
