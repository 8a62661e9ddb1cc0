"""The tree ``customs-hub demo --trace`` prints (hub/cli/tracetree.py), drawn from spans two
hubs' telemetry made: the receiver's trace under the sender's span its link names."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from hub.app.telemetry import MESSAGE_ID, OUTCOME, PARTNER, Telemetry
from hub.cli.tracetree import Spans, message_tree
from hub.config import TelemetryConfig

MS = 1_000_000


def hub(party: str) -> tuple[Telemetry, InMemorySpanExporter]:
    exported = InMemorySpanExporter()
    return Telemetry(TelemetryConfig(), party, span_exporter=exported), exported


def test_the_receivers_trace_hangs_under_the_span_it_links_to() -> None:
    cn, cn_spans = hub("CN")
    nz, nz_spans = hub("NZ")
    t0 = 1_800_000_000_000 * MS
    submit = cn.span("submit", t0, t0 + 5 * MS, attributes={MESSAGE_ID: "m-1"})
    cn.span("sign", t0 + 1 * MS, t0 + 2 * MS, parent=submit)
    deliver = cn.span(
        "deliver", t0 + 6 * MS, t0 + 20 * MS, parent=submit, attributes={PARTNER: "NZ"}
    )
    cn.span("receipt", t0 + 18 * MS, t0 + 19 * MS, parent=deliver)
    receive = nz.span("receive", t0 + 8 * MS, t0 + 16 * MS, link=submit)
    nz.span("store", t0 + 10 * MS, t0 + 15 * MS, parent=receive, attributes={OUTCOME: "ok"})
    nz.span("hand-over", t0 + 30 * MS, t0 + 31 * MS, parent=receive)
    cn.span("submit", t0, t0 + 1, attributes={MESSAGE_ID: "m-2"})  # another message: not drawn
    lines = message_tree(
        "m-1",
        [Spans("CN", cn_spans.get_finished_spans()), Spans("NZ", nz_spans.get_finished_spans())],
    )
    assert lines[0].split() == ["hub", "start", "ms", "took", "ms", "span"]
    assert [line[24:] for line in lines[1:]] == [
        "submit",
        "├─ sign",
        "├─ deliver (partner NZ)",
        "│  └─ receipt",
        "└─ (linked, own trace) receive",
        "   ├─ store (outcome ok)",
        "   └─ hand-over",
    ]
    assert [line[:4].strip() for line in lines[1:]] == ["CN"] * 4 + ["NZ"] * 3
    # start and duration in ms from the sender's root
    assert lines[5][4:24].split() == ["8.0", "8.0"]
    assert lines[7][4:24].split() == ["30.0", "1.0"]
    assert message_tree("m-9", [Spans("CN", cn_spans.get_finished_spans())]) == []
