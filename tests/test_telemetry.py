"""[telemetry] in hub.toml, the trace context in the signed envelope header, and a hub's own
telemetry providers (issue 20). Traces across hubs: tests/test_traces.py; metrics:
tests/test_metrics.py."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, TraceFlags

from hub.app.telemetry import (
    SHUTDOWN_SECONDS,
    Telemetry,
    log_ids,
    reason_code,
    span_context,
    traceparent,
)
from hub.app.traces import DeliveryTrace
from hub.config import TelemetryConfig, load_config
from hub.core.envelope import build_envelope
from hub.core.errors import EnvelopeError
from hub.core.reasons import REASONS
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import start_hub
from hub.store.schema import DueDelivery
from tests.conftest import Federation, free_port
from tests.hubprocess import HubProcess, aeo_request
from tests.otlpsink import OtlpSink
from tests.test_config_check import refusal, write_config
from tests.test_envelope import CN, NOW, declaration, open_

GOOD = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def test_telemetry_is_off_unless_configured(tmp_path: Path, pki: Path) -> None:
    config = load_config(write_config(tmp_path / "CN", pki)).telemetry
    assert config == TelemetryConfig()
    assert not config.tracing and not config.metering
    off = Telemetry(config, "CN")
    assert not off.tracing and not off.metering
    # a span made while off is no span: its context is invalid, so no header names it
    assert not off.span("submit", 1, 2).is_valid
    off.shutdown()


def test_telemetry_table_is_read_and_checked(tmp_path: Path, pki: Path) -> None:
    path = write_config(tmp_path / "CN", pki)
    text = path.read_text()

    def with_table(table: str) -> Path:
        path.write_text(text + "\n[telemetry]\n" + table + "\n")
        return path

    read = load_config(
        with_table(
            'exporter = "otlp"\notlp_endpoint = "http://127.0.0.1:4317"\n'
            "prometheus_port = 9464\nsample_ratio = 0.25"
        )
    ).telemetry
    assert (read.exporter, read.otlp_endpoint, read.prometheus_port) == (
        "otlp",
        "http://127.0.0.1:4317",
        9464,
    )
    assert read.sample_ratio == 0.25 and read.tracing and read.metering
    scrape_only = load_config(with_table("prometheus_port = 9464")).telemetry
    assert scrape_only.metering and not scrape_only.tracing
    assert "telemetry.exporter" in refusal(with_table('exporter = "jaeger"'))
    assert "telemetry.otlp_endpoint" in refusal(with_table('exporter = "otlp"'))
    assert "telemetry.otlp_endpoint" in refusal(
        with_table('exporter = "otlp"\notlp_endpoint = "file:///tmp/x"')
    )
    assert "telemetry.otlp_endpoint" in refusal(
        with_table('exporter = "console"\notlp_endpoint = "http://127.0.0.1:4317"')
    )
    assert "telemetry.prometheus_port" in refusal(with_table("prometheus_port = 70000"))
    assert "telemetry.prometheus_address" in refusal(with_table('prometheus_address = "any"'))
    assert "telemetry.sample_ratio" in refusal(with_table("sample_ratio = 2.0"))
    assert "telemetry.exporters" in refusal(with_table('exporters = "console"'))


def test_traceparent_round_trips_and_refuses_what_w3c_does() -> None:
    context = span_context(GOOD)
    assert context is not None and context.is_remote
    assert context.trace_flags == TraceFlags.SAMPLED
    assert traceparent(context) == GOOD
    for bad in (
        "",
        GOOD.upper(),
        "ff" + GOOD[2:],  # the version W3C rules out
        GOOD + "-more",  # version 00 is exactly 55 characters
        "00-" + "0" * 32 + GOOD[35:],  # all-zero trace id
        GOOD[:36] + "0" * 16 + GOOD[52:],  # all-zero span id
        GOOD + "-extra",
        GOOD[:-1],
    ):
        assert span_context(bad) is None, bad
    assert traceparent(SpanContext(0, 0, is_remote=False)) == ""
    # a later version is read for the fields version 00 has, the rest ignored (W3C)
    later = span_context("01" + GOOD[2:] + "-what-a-later-version-adds")
    assert later is not None and traceparent(later) == GOOD
    assert log_ids(context) == {
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
    }


def sealed(value: str) -> bytes:
    data, _ = build_envelope(
        CN,
        sender="CN",
        recipient="NZ",
        document=declaration(),
        created_at=NOW,
        ttl=timedelta(days=1),
        traceparent=value,
    )
    return data


def test_the_trace_context_is_signed_with_the_header() -> None:
    opened = open_(sealed(GOOD))
    assert opened.header.traceparent == GOOD  # type: ignore[attr-defined]
    later = "01" + GOOD[2:] + "-more"  # a partner's newer tracer: its message is accepted
    assert open_(sealed(later)).header.traceparent == later  # type: ignore[attr-defined]
    assert open_(sealed("")).header.traceparent == ""  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "value",
    [
        GOOD.upper(),
        "ff" + GOOD[2:],
        "01" + GOOD[2:] + "-" + "x" * 300,  # a later version, too long
        "00-" + "0" * 32 + GOOD[35:],
        GOOD + " ",
        "x" * 4096,
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\n",
    ],
)
def test_a_malformed_trace_context_is_refused_as_header_malformed(value: str) -> None:
    with pytest.raises(EnvelopeError) as caught:
        open_(sealed(value))
    assert caught.value.reason == "header-malformed"
    assert "traceparent" in caught.value.message
    assert value not in caught.value.message  # the sender's text is not echoed


def test_spans_are_bounded_and_rooted_where_asked() -> None:
    exported = InMemorySpanExporter()
    telemetry = Telemetry(TelemetryConfig(), "NZ", span_exporter=exported)
    remote = span_context(GOOD)
    root = telemetry.span(
        "receive", 10, 20, link=remote, attributes={"customs_hub.partner": "CN" * 200}
    )
    child = telemetry.span("verify", 11, 12, parent=root, error="signature-invalid")
    assert remote is not None and root.trace_id != remote.trace_id
    spans = {s.name: s for s in exported.get_finished_spans()}
    receive, verify = spans["receive"], spans["verify"]
    assert receive.parent is None and len(receive.links) == 1
    assert receive.links[0].context.trace_id == int(GOOD[3:35], 16)
    assert len(str(receive.attributes["customs_hub.partner"])) == 128  # cut to the limit
    assert verify.parent is not None and verify.parent.span_id == root.span_id
    assert verify.context.trace_id == root.trace_id == child.trace_id
    assert (receive.start_time, receive.end_time) == (10, 20)
    assert not verify.status.is_ok
    telemetry.shutdown()


def test_our_sampler_decides_not_the_partners_flag() -> None:
    """With sample_ratio 0 nothing of ours is kept, though the partner's context says
    "sampled": a partner cannot make us record (or flood) traces."""
    exported = InMemorySpanExporter()
    telemetry = Telemetry(TelemetryConfig(sample_ratio=0.0), "NZ", span_exporter=exported)
    root = telemetry.span("receive", 10, 20, link=span_context(GOOD))
    telemetry.span("verify", 11, 12, parent=root)
    assert root.is_valid and not root.trace_flags.sampled
    assert exported.get_finished_spans() == ()


async def test_a_serving_hub_exports_its_spans_over_otlp(tmp_path: Path, pki: Path) -> None:
    """A real `customs-hub serve` with exporter = "otlp" sends its spans to a collector (the
    fake one, tests/otlpsink.py, over real OTLP/gRPC): the submission's, named by message id,
    under the hub's service name; what it still holds is sent as it stops."""
    sink = OtlpSink(free_port())
    await sink.start()
    path = write_config(tmp_path / "CN", pki)
    path.write_text(
        path.read_text()
        + f'\n[telemetry]\nexporter = "otlp"\notlp_endpoint = "http://127.0.0.1:{sink.port}"\n'
    )
    hub = HubProcess("CN", path)
    try:
        hub.start()
        await hub.ready()
        async with grpc.aio.insecure_channel(hub.domestic) as channel:
            answer = await sgrpc.DomesticStub(channel).Submit(aeo_request("otlp-1"), timeout=10)
        await hub.stop_gracefully()
    finally:
        hub.stop_quietly()
        await sink.stop()
    [queued] = answer.queued
    ids = {
        a.value.string_value
        for span in sink.spans
        for a in span.attributes
        if a.key == "customs_hub.message_id"
    }
    assert queued.message_id in ids
    assert {span.name for span in sink.spans} >= {"submit", "sign"}


async def test_a_collector_that_is_down_does_not_hold_up_the_hubs_stop(
    tmp_path: Path, pki: Path
) -> None:
    """The OTLP exporters would retry a dead collector for their whole timeout at the last
    export; the hub waits for them at most SHUTDOWN_SECONDS, off its loop (it was 13 s)."""
    path = write_config(tmp_path / "CN", pki)
    nobody = free_port()  # nothing listens there
    path.write_text(
        path.read_text()
        + f'\n[telemetry]\nexporter = "otlp"\notlp_endpoint = "http://127.0.0.1:{nobody}"\n'
    )
    running = await start_hub(load_config(path))
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        await sgrpc.DomesticStub(channel).Submit(aeo_request("down-1"), timeout=10)
    began = time.monotonic()
    await running.stop(grace=1.0)
    # the grace, the bounded wait, and slack for a loaded machine; without the bound: 13 s
    assert time.monotonic() - began < 1.0 + SHUTDOWN_SECONDS + 4.0


def test_a_partners_receipt_reason_reaches_a_span_only_as_a_registered_code() -> None:
    """A partner's receipt carries its reason as free text: what it writes there (a trader's
    name, a document's value) must not reach our spans; a code we register does."""
    exported = InMemorySpanExporter()
    telemetry = Telemetry(TelemetryConfig(), "CN", span_exporter=exported)
    traces = DeliveryTrace(telemetry, "NZ")
    header = pb.Header(message_id="m", body_type="customs_hub.v1.GoodsDeclaration")
    header.traceparent = GOOD
    envelope = pb.Envelope(header=header.SerializeToString()).SerializeToString()
    told = {1: "Jane Trader of 1 High St, NZ99999", 2: "signature-invalid"}
    due = [DueDelivery(i, i, f"m{i}", "NZ", envelope, b"", 0) for i in told]
    traces.taken(due)
    # a log line about an attempt in flight names the message's trace
    assert traces.log_ids(due[0]) == {"trace_id": GOOD[3:35], "span_id": GOOD[36:52]}
    for item in due:
        traces.settled(item, "rejected", told[item.entry_id], (10, 20))
    reasons = sorted(
        str(s.attributes["customs_hub.reason"])
        for s in exported.get_finished_spans()
        if s.name == "deliver"
    )
    assert "signature-invalid" in REASONS
    assert reason_code("TRADER-MARK: anything a partner writes") == "other"
    assert reasons == ["other", "signature-invalid"]
    assert traces.log_ids(due[0]) == {}  # settled: no longer in flight
    telemetry.shutdown()


class _Flushing(Telemetry):
    """Telemetry that notes the thread its shutdown ran on (an OTLP exporter's final export
    to a collector that is down blocks for seconds)."""

    threads: list[str]

    def shutdown(self, wait: float = SHUTDOWN_SECONDS) -> None:
        self.threads.append(threading.current_thread().name)
        super().shutdown(wait)


@pytest.mark.parametrize("federation", ["sqlite"], indirect=True)
async def test_a_closing_hub_flushes_its_telemetry_off_the_event_loop(
    federation: Federation,
) -> None:
    telemetry = _Flushing(federation.configs["NZ"].telemetry, "NZ")
    telemetry.threads = []
    await federation.start("NZ", telemetry=telemetry)
    await federation.stop("NZ")
    assert telemetry.threads and threading.main_thread().name not in telemetry.threads
