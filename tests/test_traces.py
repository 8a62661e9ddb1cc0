"""Traces of each message across two real hubs (issue 20, docs/telemetry.md): the sender's
trace from the domestic call to the partner's receipt, carried in the signed header; the
receiver's own trace, linked to it and never parented by it, to the hand-over; what a partner
puts in that header deciding nothing of ours; and nothing at all with telemetry off."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracer, SpanContext, SpanKind, StatusCode

from hub.app.telemetry import (
    ATTEMPT,
    ATTRIBUTES,
    BODY_TYPE,
    FORMAT,
    MESSAGE_ID,
    OUTCOME,
    PARTNER,
    REASON,
    Telemetry,
    traceparent,
)
from hub.cli.demo import sample_declaration
from hub.core.envelope import build_envelope, verify_receipt
from hub.core.errors import REASON_KEY
from hub.logs import trace_ids
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import RunningHub
from tests.conftest import Federation
from tests.test_delivery import fast_retries
from tests.test_dropfolder import add_folder, drop, files
from tests.test_exchange import as_partner, eventually, nz_signing_key, refused, signer_of
from tests.testdata import CDS_SAMPLES

DECLARATION = CDS_SAMPLES / "TT_IM068a/TT_IM068a.xml"
LRN = "U.7849431R66ZB"  # the declaration's functional reference: never in a span
CORRELATION = "trace-test-correlation-7c1f"  # chosen by the domestic system: never in a span
FOREIGN_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SQLITE_ONLY = pytest.mark.parametrize("federation", ["sqlite"], indirect=True)


async def start(federation: Federation, party: str) -> tuple[RunningHub, InMemorySpanExporter]:
    """``party``'s hub with its spans exported to memory."""
    exporter = InMemorySpanExporter()
    config = federation.configs[party]
    telemetry = Telemetry(config.telemetry, party, span_exporter=exporter)
    return await federation.start(party, telemetry=telemetry), exporter


async def submit_xml(running: RunningHub, format_id: str = "wco-xml") -> spb.Queued:
    """The corpus's WCO XML declaration, submitted raw for NZ (its format named, or left to
    be detected)."""
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        response = await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(
                raw=spb.RawDocument(format=format_id, content=DECLARATION.read_bytes()),
                recipients=["NZ"],
                correlation_id=CORRELATION,
            ),
            timeout=10,
        )
    [queued] = response.queued
    return queued


async def subscribe_one(running: RunningHub) -> spb.InboundMessage:
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="cds"), timeout=10
        )
        handed = await stream.read()
        stream.cancel()
    assert isinstance(handed, spb.InboundMessage)
    return handed


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = named(spans, name)
    return span


def context(span: ReadableSpan) -> SpanContext:
    assert span.context is not None
    return span.context


def under(span: ReadableSpan, parent: ReadableSpan) -> bool:
    """Whether ``span``'s parent is ``parent`` (the ids: a context read from a header is
    marked remote)."""
    return span.parent is not None and (span.parent.trace_id, span.parent.span_id) == (
        context(parent).trace_id,
        context(parent).span_id,
    )


def ids(span: ReadableSpan) -> tuple[str, str]:
    """A span's trace and span id as log lines carry them."""
    return f"{context(span).trace_id:032x}", f"{context(span).span_id:016x}"


def times(span: ReadableSpan) -> tuple[int, int]:
    assert span.start_time is not None and span.end_time is not None
    return span.start_time, span.end_time


def header_of(envelope: bytes) -> pb.Header:
    return pb.Header.FromString(pb.Envelope.FromString(envelope).header)


def assert_clean(spans: Sequence[ReadableSpan]) -> None:
    """Spans hold only the attributes the hub names, and none of the document's content or
    the domestic system's correlation id."""
    for span in spans:
        attributes = dict(span.attributes or {})
        assert set(attributes) <= ATTRIBUTES, span.name
        for value in attributes.values():
            assert LRN not in str(value) and CORRELATION not in str(value), span.name


def assert_tree(spans: Sequence[ReadableSpan], root: ReadableSpan) -> None:
    """Every span is in ``root``'s trace and its parent is a span of it: one tree."""
    ids = {context(s).span_id for s in spans}
    for span in spans:
        assert context(span).trace_id == context(root).trace_id, span.name
        if span is root:
            assert span.parent is None
        else:
            assert span.parent is not None and span.parent.span_id in ids, span.name


async def test_a_message_is_traced_at_the_sender_and_the_receiver_links_to_it(
    federation: Federation,
) -> None:
    cn, cn_spans = await start(federation, "CN")
    nz, nz_spans = await start(federation, "NZ")
    queued = await submit_xml(cn)

    async def delivered() -> list[ReadableSpan]:
        return named(cn_spans.get_finished_spans(), "deliver")

    await eventually(delivered)
    handed = await subscribe_one(nz)
    assert handed.message_id == queued.message_id

    # the sender: one trace, from the call to the partner's receipt
    sent = cn_spans.get_finished_spans()
    assert sorted(s.name for s in sent) == sorted(
        ["submit", "translate", "policy", "sign", "store", "outbox wait", "deliver", "receipt"]
    )
    root = one(sent, "submit")
    assert root.kind == SpanKind.SERVER
    assert_tree(sent, root)
    by_name = {s.name: s for s in sent}
    for child in ("translate", "policy", "sign", "store", "outbox wait", "deliver"):
        assert under(by_name[child], root), child
    assert under(by_name["receipt"], by_name["deliver"])
    assert dict(root.attributes or {})[MESSAGE_ID] == queued.message_id
    assert dict(by_name["translate"].attributes or {})[FORMAT] == "wco-xml"
    deliver = by_name["deliver"]
    assert deliver.kind == SpanKind.CLIENT and deliver.status.status_code != StatusCode.ERROR
    expected = {ATTEMPT: 1, OUTCOME: "accepted", PARTNER: "NZ"}
    assert expected.items() <= dict(deliver.attributes or {}).items()
    # phases in order: the call began first, the commit ended the root, delivery came after
    assert times(root)[0] <= times(by_name["translate"])[0] <= times(by_name["policy"])[0]
    assert times(by_name["policy"])[1] <= times(by_name["sign"])[0]
    assert times(by_name["sign"])[1] <= times(by_name["store"])[0]
    assert times(by_name["store"])[1] == times(root)[1] <= times(deliver)[1]

    # the signed header names the sender's root, at both ends
    [(outbound, _)] = await cn.hub.store.views.outbound()
    [inbound] = await nz.hub.store.views.inbound()
    assert header_of(outbound.envelope).traceparent == traceparent(context(root))
    assert pb.Header.FromString(inbound.header).traceparent == traceparent(context(root))

    # the receiver: a trace of its own, linked to the sender's root, never its child
    received = nz_spans.get_finished_spans()
    assert sorted(s.name for s in received) == sorted(
        ["receive", "verify", "store", "receipt", "hand-over"]
    )
    receive = one(received, "receive")
    assert receive.kind == SpanKind.SERVER and receive.parent is None
    assert context(receive).trace_id != context(root).trace_id
    [link] = receive.links
    assert link.context.trace_id == context(root).trace_id
    assert link.context.span_id == context(root).span_id
    assert_tree(received, receive)
    for span in received:
        if span is not receive:
            assert under(span, receive), span.name
    assert dict(receive.attributes or {})[OUTCOME] == "accepted"
    assert dict(receive.attributes or {})[PARTNER] == "CN"
    # the inbound row keeps the receive span's context, for the hand-over
    assert inbound.trace == traceparent(context(receive))
    assert_clean([*sent, *received])


async def test_a_delivery_that_fails_first_shows_each_attempt(federation: Federation) -> None:
    fast_retries(federation, "CN")
    cn, cn_spans = await start(federation, "CN")  # NZ is down
    queued = await submit_xml(cn)

    async def failed() -> list[ReadableSpan]:
        return named(cn_spans.get_finished_spans(), "deliver")

    await eventually(failed)
    nz, _ = await start(federation, "NZ")

    async def accepted() -> list[ReadableSpan]:
        spans = named(cn_spans.get_finished_spans(), "deliver")
        return [s for s in spans if dict(s.attributes or {})[OUTCOME] == "accepted"]

    await eventually(accepted)
    sent = cn_spans.get_finished_spans()
    root = one(sent, "submit")
    assert_tree(sent, root)
    attempts = sorted(named(sent, "deliver"), key=lambda s: dict(s.attributes or {})[ATTEMPT])
    numbers = [dict(s.attributes or {})[ATTEMPT] for s in attempts]
    outcomes = [dict(s.attributes or {})[OUTCOME] for s in attempts]
    assert len(attempts) >= 2 and numbers == list(range(1, len(attempts) + 1))
    assert outcomes == ["failed"] * (len(attempts) - 1) + ["accepted"]
    for failure in attempts[:-1]:
        assert failure.status.status_code == StatusCode.ERROR
        assert dict(failure.attributes or {})[REASON] == "partner-unavailable"
    assert all(under(s, root) for s in attempts)
    # one wait in the outbox (before the first attempt), one receipt (under the last)
    assert under(one(sent, "outbox wait"), root)
    assert under(one(sent, "receipt"), attempts[-1])
    [(outbound, record)] = await cn.hub.store.views.outbound()
    assert outbound.message_id == queued.message_id and record is not None
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [queued.message_id]


def envelope_with(pki: Path, trace: str) -> bytes:
    """A declaration CN signed, its header carrying ``trace`` as traceparent."""
    data, _ = build_envelope(
        signer_of(pki, "CN"),
        sender="CN",
        recipient="NZ",
        document=sample_declaration(),
        created_at=datetime.now(UTC),
        ttl=timedelta(days=1),
        traceparent=trace,
    )
    return data


@SQLITE_ONLY
@pytest.mark.parametrize(
    "trace",
    [
        "00-" + FOREIGN_TRACE + "-00f067aa0ba902b7",  # flags missing
        "ff-" + FOREIGN_TRACE + "-00f067aa0ba902b7-01",  # the version W3C rules out
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # all-zero trace id
        "00-" + FOREIGN_TRACE.upper() + "-00f067aa0ba902b7-01",  # upper case
        "00-" + FOREIGN_TRACE + "-00f067aa0ba902b7-01" + "x" * 1000,  # longer
    ],
)
async def test_a_malformed_traceparent_is_refused_and_nothing_is_stored(
    federation: Federation, pki: Path, trace: str, caplog: pytest.LogCaptureFixture
) -> None:
    nz, spans = await start(federation, "NZ")
    with caplog.at_level(logging.WARNING, logger="customs_hub"):
        error = await refused(pki, nz, envelope_with(pki, trace))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "header-malformed"
    assert await nz.hub.store.views.inbound() == []
    [rejection] = await nz.hub.store.views.rejections()
    assert rejection.reason == "header-malformed"
    [receive] = spans.get_finished_spans()
    assert receive.name == "receive" and receive.parent is None and not receive.links
    assert receive.status.status_code == StatusCode.ERROR
    assert dict(receive.attributes or {})[REASON] == "header-malformed"
    # the refusal's log line names that span (JSON log lines carry the ids)
    [line] = [r for r in caplog.records if "rejected from CN" in r.getMessage()]
    assert (line.trace_id, line.span_id) == ids(receive)  # type: ignore[attr-defined]
    # and the hub still serves CN
    good = envelope_with(pki, "")
    client = as_partner(pki, "CN", nz)
    try:
        receipt = await client.deliver("NZ", good, timeout=5)
    finally:
        await client.close()
    assert verify_receipt(receipt, "NZ", nz_signing_key(pki)).outcome == (
        pb.RECEIPT_OUTCOME_ACCEPTED
    )
    assert len(await nz.hub.store.views.inbound()) == 1


@SQLITE_ONLY
async def test_a_partners_trace_context_is_only_ever_a_link(
    federation: Federation, pki: Path
) -> None:
    """A valid traceparent naming a foreign trace, flagged sampled, and one flagged not
    sampled: NZ's spans are in traces of NZ's own, sampled as NZ's sampler decides."""
    nz, spans = await start(federation, "NZ")
    foreign = f"00-{FOREIGN_TRACE}-00f067aa0ba902b7-01"
    unsampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
    client = as_partner(pki, "CN", nz)
    try:
        for trace in (foreign, unsampled):
            receipt = await client.deliver("NZ", envelope_with(pki, trace), timeout=5)
            assert verify_receipt(receipt, "NZ", nz_signing_key(pki)).outcome == (
                pb.RECEIPT_OUTCOME_ACCEPTED
            )
        last = envelope_with(pki, foreign)
        first = await client.deliver("NZ", last, timeout=5)
        again = await client.deliver("NZ", last, timeout=5)  # a resend: its first receipt
        assert again.SerializeToString() == first.SerializeToString()
    finally:
        await client.close()
    handed = [await subscribe_one(nz)]
    assert handed[0].sender == "CN"
    received = spans.get_finished_spans()
    roots = named(received, "receive")
    # the partner's "not sampled" decided nothing; the resend has a root of its own
    outcomes = sorted(dict(r.attributes or {})[OUTCOME] for r in roots)
    assert outcomes == ["accepted", "accepted", "accepted", "duplicate"]
    partner_ids = {int(FOREIGN_TRACE, 16), 0x0AF7651916CD43DD8448EB211C80319C}
    for span in received:
        assert context(span).trace_id not in partner_ids, span.name
        if span.parent is not None:
            assert span.parent.trace_id not in partner_ids, span.name
            assert span.parent.span_id not in (0x00F067AA0BA902B7, 0xB7AD6B7169203331)
    assert {r.links[0].context.trace_id for r in roots} == partner_ids
    assert all(root.parent is None for root in roots)
    # each hand-over (the stream sends on before the subscriber reads) is under NZ's own
    # receive span
    handed_over = named(received, "hand-over")
    assert handed_over and all(any(under(h, r) for r in roots) for h in handed_over)


async def test_a_message_received_untraced_is_handed_over_in_a_root_linked_to_the_sender(
    federation: Federation,
) -> None:
    """NZ received it with telemetry off (no trace kept with the row), and hands it over
    after a restart with telemetry on: the hand-over is a root linked to CN's trace."""
    cn, cn_spans = await start(federation, "CN")
    nz = await federation.start("NZ")
    queued = await submit_xml(cn)

    async def delivered() -> list[ReadableSpan]:
        return named(cn_spans.get_finished_spans(), "deliver")

    await eventually(delivered)
    [inbound] = await nz.hub.store.views.inbound()
    assert inbound.message_id == queued.message_id and inbound.trace is None
    await federation.stop("NZ")
    nz, nz_spans = await start(federation, "NZ")
    await subscribe_one(nz)
    root = one(cn_spans.get_finished_spans(), "submit")
    [hand_over] = nz_spans.get_finished_spans()
    assert hand_over.name == "hand-over" and hand_over.parent is None
    assert context(hand_over).trace_id != context(root).trace_id
    [link] = hand_over.links
    assert (link.context.trace_id, link.context.span_id) == (
        context(root).trace_id,
        context(root).span_id,
    )


@SQLITE_ONLY
async def test_with_telemetry_off_no_spans_are_made_and_headers_carry_none(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    for running in (cn, nz):
        assert not running.hub.telemetry.tracing
        assert isinstance(running.hub.telemetry.tracer, NoOpTracer)
    queued = await submit_xml(cn)

    async def delivered() -> list[object]:
        rows = await cn.hub.store.views.outbound()
        return rows if rows and rows[0][1] is not None else []

    [(outbound, _)] = await eventually(delivered)
    await subscribe_one(nz)
    [inbound] = await nz.hub.store.views.inbound()
    assert inbound.message_id == queued.message_id
    assert header_of(outbound.envelope).traceparent == ""
    assert pb.Header.FromString(inbound.header).traceparent == ""
    assert inbound.trace is None
    # and no sender keeps anything for spans
    assert cn.worker.senders["NZ"].traces is None


@SQLITE_ONLY
async def test_a_derived_message_is_in_the_trace_of_its_document(federation: Federation) -> None:
    """A notification and the control result it reports: one trace, the result's span a
    child of the notification's root, each envelope's header naming its own span."""
    cn, cn_spans = await start(federation, "CN")
    await start(federation, "NZ")
    data = (CDS_SAMPLES / "TT_IM068a/Example_Notifications/07_DMSCLE.xml").read_bytes()
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        response = await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(
                raw=spb.RawDocument(format="wco-xml", content=data), recipients=["NZ"]
            ),
            timeout=10,
        )
    assert len(response.queued) == 2

    async def both_delivered() -> list[ReadableSpan]:
        spans = named(cn_spans.get_finished_spans(), "deliver")
        return spans if len(spans) == 2 else []

    await eventually(both_delivered)
    sent = cn_spans.get_finished_spans()
    root = one(sent, "submit")
    derived = one(sent, "derived")
    assert_tree(sent, root)
    assert under(derived, root)
    assert dict(derived.attributes or {})[BODY_TYPE] == "ControlResult"
    assert dict(root.attributes or {})[BODY_TYPE] == "Response"
    headers = {
        m.body_type.rsplit(".", 1)[-1]: header_of(m.envelope).traceparent
        for m, _ in await cn.hub.store.views.outbound()
    }
    assert headers == {
        "Response": traceparent(context(root)),
        "ControlResult": traceparent(context(derived)),
    }
    deliveries = named(sent, "deliver")
    assert sorted(under(d, root) for d in deliveries) == [False, True]
    assert sorted(under(d, derived) for d in deliveries) == [False, True]
    assert_clean(sent)


@SQLITE_ONLY
async def test_drop_folders_trace_the_pickup_and_the_hand_over(federation: Federation) -> None:
    for party, text in (
        ("CN", 'settle_seconds = 0\nrecipients = ["NZ"]'),
        ("NZ", 'outbox_format = "wco-xml"\nsettle_seconds = 0'),
    ):
        add_folder(federation, party, text)
    _, cn_spans = await start(federation, "CN")
    _, nz_spans = await start(federation, "NZ")
    cn_root = federation.root / "CN" / "exchange"
    nz_root = federation.root / "NZ" / "exchange"
    drop(cn_root, "declaration.xml", DECLARATION.read_bytes())

    async def written() -> list[str]:
        return files(nz_root / "outbox")

    await eventually(written)

    async def handed_over() -> list[ReadableSpan]:
        return named(nz_spans.get_finished_spans(), "hand-over")

    [hand_over] = await eventually(handed_over)
    sent = cn_spans.get_finished_spans()
    root = one(sent, "submit")
    assert_tree(sent, root)
    translate = one(sent, "translate")
    assert under(translate, root) and dict(translate.attributes or {})[FORMAT] == "wco-xml"
    assert times(root)[0] <= times(translate)[0]
    receive = one(nz_spans.get_finished_spans(), "receive")
    assert under(hand_over, receive)
    [link] = receive.links
    assert (link.context.trace_id, link.context.span_id) == (
        context(root).trace_id,
        context(root).span_id,
    )
    # no file name or path in any span
    for span in [*sent, *nz_spans.get_finished_spans()]:
        for value in dict(span.attributes or {}).values():
            assert "declaration" not in str(value) and "exchange" not in str(value), span.name
    assert_clean(sent)


@SQLITE_ONLY
async def test_a_refused_submission_is_a_failed_submit_root(
    federation: Federation, caplog: pytest.LogCaptureFixture
) -> None:
    cn, spans = await start(federation, "CN")
    caplog.set_level(logging.WARNING, logger="customs_hub")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as broken:
            await stub.Submit(
                spb.SubmitRequest(
                    raw=spb.RawDocument(format="wco-xml", content=b"<Declaration><ID>"),
                    recipients=["NZ"],
                ),
                timeout=10,
            )
        with pytest.raises(grpc.aio.AioRpcError) as nobody:  # a party that is no partner
            await stub.Submit(
                spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["XX"]),
                timeout=10,
            )
    reasons = [dict(e.value.trailing_metadata() or ())[REASON_KEY] for e in (broken, nobody)]
    made = spans.get_finished_spans()
    assert [s.name for s in made] == ["submit", "submit"]
    lines = [r for r in caplog.records if "rejected from domestic" in r.getMessage()]
    assert len(lines) == 2
    for span, reason, line in zip(made, reasons, lines, strict=True):
        assert span.parent is None and span.status.status_code == StatusCode.ERROR
        assert dict(span.attributes or {})[REASON] == reason
        assert (line.trace_id, line.span_id) == ids(span)  # type: ignore[attr-defined]
    assert await cn.hub.store.views.outbound() == []


@SQLITE_ONLY
async def test_a_refusals_log_line_names_the_trace_of_its_receive_span(
    federation: Federation, pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """JSON log lines carry trace and span ids (docs/telemetry.md): a refusal's line names
    the failed ``receive`` span, so an operator finds one from the other."""
    nz, spans = await start(federation, "NZ")
    tampered = bytearray(envelope_with(pki, ""))
    tampered[-5] ^= 0x01
    caplog.set_level(logging.WARNING, logger="customs_hub")
    error = await refused(pki, nz, bytes(tampered))
    assert error.code() != grpc.StatusCode.OK
    [receive] = spans.get_finished_spans()
    assert receive.name == "receive" and receive.status.status_code == StatusCode.ERROR
    [line] = [r for r in caplog.records if r.getMessage().startswith("rejected from CN")]
    assert trace_ids(line) == (
        f"{context(receive).trace_id:032x}",
        f"{context(receive).span_id:016x}",
    )


@SQLITE_ONLY
async def test_a_detected_format_is_named_as_such(federation: Federation) -> None:
    """A raw document whose format the domestic system left empty: its translate span says
    "detected", never an empty or a submitter's string."""
    cn, spans = await start(federation, "CN")
    await submit_xml(cn, "")
    [translate] = named(spans.get_finished_spans(), "translate")
    assert dict(translate.attributes or {})[FORMAT] == "detected"
