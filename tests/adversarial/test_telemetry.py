"""Telemetry leaks nothing (issue 20, family "telemetry"): marker strings planted in every
field of the documents, in correlation and submission ids, in a format name, in the folder
that holds the hubs' stores and configuration, and the private keys' own text, are sent
through the accepting and the refusing paths of two real hubs with tracing and metrics on.
None of them may appear in a span (name, attribute, status, event, link), a metric label or a
log line; the probe (tests/telemetryprobe.py, installed for every attack) also holds each
attribute and label to the values telemetry may carry."""

from __future__ import annotations

import logging
from pathlib import Path

import grpc
import pytest

from hub.app.telemetry import MESSAGE_ID
from hub.cli.demo import sample_declaration
from hub.core.envelope import sha256
from hub.core.errors import REASON_KEY
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from tests.adversarial.conditions import still_serves_sg
from tests.conftest import Federation
from tests.telemetryprobe import Probe
from tests.test_exchange import as_partner, eventually, handed_over, signed_envelope

TRADE = "TRADER-MARK-5e1c"  # in names, ids and free text of the documents
CORRELATION = "CORR-MARK-93b0"
SUBMISSION = "SUBM-MARK-d4a7"
FORMAT = "FMT-MARK-1f06"
FOLDER = "FOLDER-MARK-c2e8"  # the hubs' folder: stores, configuration, keys


def marked_declaration():  # type: ignore[no-untyped-def]
    d = sample_declaration()
    d.functional_reference_id = f"{TRADE}-LRN"
    d.declarant.id, d.declarant.name = f"{TRADE}-ID", f"{TRADE} Forwarding"
    d.exporter.id, d.exporter.name = f"{TRADE}-EXP", f"{TRADE} Tea"
    d.goods_shipment.government_agency_goods_item[0].commodity.description = f"{TRADE} tea"
    return d


def key_texts(pki: Path) -> list[str]:
    """Every line of base64 in every private key of the federation: a secret's own text."""
    lines: list[str] = []
    for key in pki.glob("*/*.key"):
        lines += [line for line in key.read_text().splitlines() if len(line) > 20]
    return lines


@pytest.fixture
async def marked(tmp_path: Path, pki: Path) -> Federation:
    root = tmp_path / FOLDER
    root.mkdir()
    return Federation(root, pki)


async def test_no_marker_reaches_a_span_a_label_or_a_log_line(
    marked: Federation,
    pki: Path,
    telemetry_probe: Probe,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    try:
        cn = await marked.start("CN")
        nz = await marked.start("NZ")
        async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
            domestic = sgrpc.DomesticStub(channel)
            # accepted: a marked declaration to NZ, handed over there
            answer = await domestic.Submit(
                spb.SubmitRequest(
                    goods_declaration=marked_declaration(),
                    correlation_id=CORRELATION,
                    submission_id=SUBMISSION,
                ),
                timeout=10,
            )
            [queued] = answer.queued
            # refused: a format that is no format, and a document that is no document
            for raw, reason in (
                (spb.RawDocument(format=FORMAT, content=TRADE.encode()), "unsupported-format"),
                (
                    spb.RawDocument(format="wco-xml", content=f"<{TRADE}>".encode()),
                    "not-well-formed",
                ),
            ):
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await domestic.Submit(
                        spb.SubmitRequest(raw=raw, correlation_id=CORRELATION), timeout=10
                    )
                metadata = dict(caught.value.trailing_metadata() or ())
                assert metadata[REASON_KEY] == reason, metadata
        await eventually(lambda: handed_over(nz, "marked"))
        # a partner's envelope with marked content and correlation id, and a tampered one
        good, _ = signed_envelope(pki, document=marked_declaration(), correlation_id=CORRELATION)
        tampered = bytearray(signed_envelope(pki, document=marked_declaration())[0])
        tampered[-5] ^= 0x01
        client = as_partner(pki, "CN", nz)
        try:
            receipts = await client.exchange("NZ", [good, bytes(tampered)], timeout=5)
        finally:
            await client.close()
        assert receipts[0].signature and len(receipts) == 2
        await still_serves_sg(pki, nz, only_sg=False)
        inbound = {m.message_id for m in await nz.hub.store.views.inbound()}
        assert queued.message_id in inbound
    finally:
        await marked.stop_all()
    # telemetry was on and recorded these very messages
    traced = {s.attributes.get(MESSAGE_ID) for s in telemetry_probe.spans() if s.attributes}
    assert queued.message_id in traced
    markers = [TRADE, CORRELATION, SUBMISSION, FORMAT, FOLDER, *key_texts(pki)]
    markers.append(sha256(TRADE.encode()).hex()[:16])  # not even a digest of one
    assert telemetry_probe.problems(markers) == []
    # the hub's own lines (libraries' debug lines are held at WARNING by the command line:
    # tests/test_logs.py)
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("customs_hub")]
    assert logged  # the hubs did log (a delivery, a refusal): the check below can fail
    for marker in (TRADE, CORRELATION, SUBMISSION, *key_texts(pki)):
        assert not [line for line in logged if marker in line], marker
