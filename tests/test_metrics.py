"""The hub's metrics (hub/app/metrics.py), read from real hubs exchanging real messages over
mTLS: in-memory readers for the values, the Prometheus endpoint over HTTP, and a real
``customs-hub serve`` process serving /metrics."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import json_format
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    InMemoryMetricReader,
    NumberDataPoint,
    PeriodicExportingMetricReader,
)

from hub.app import metrics as m
from hub.app.telemetry import Telemetry
from hub.cli.demo import sample_declaration
from hub.cli.pki import DEV_VALIDITY
from hub.config import TelemetryConfig
from hub.core.errors import ConfigError
from hub.core.reasons import REASONS
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import RunningHub
from tests.conftest import PARTIES, Federation, free_port
from tests.hubprocess import CLI, make_federation
from tests.test_exchange import as_partner, eventually, signed_envelope, submit

Labels = frozenset[tuple[str, Any]]


def metered(federation: Federation, party: str, **telemetry: Any) -> tuple[Telemetry, Any]:
    """A Telemetry for ``party`` with an in-memory reader (and ``telemetry`` settings)."""
    reader = InMemoryMetricReader()
    config = replace(federation.configs[party].telemetry, **telemetry)
    return Telemetry(config, party, metric_readers=[reader]), reader


async def start(federation: Federation, party: str) -> tuple[RunningHub, InMemoryMetricReader]:
    telemetry, reader = metered(federation, party)
    return await federation.start(party, telemetry=telemetry), reader


def points(reader: InMemoryMetricReader) -> Iterator[tuple[str, str, Labels, Any]]:
    """Every point the reader collects now: (metric name, unit, labels, point)."""
    data = reader.get_metrics_data()
    if data is None:
        return
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    labels = frozenset((point.attributes or {}).items())
                    yield metric.name, metric.unit, labels, point


def values(reader: InMemoryMetricReader, name: str) -> dict[Labels, Any]:
    """The points of one metric, by labels: a number, or a histogram point."""
    found: dict[Labels, Any] = {}
    for metric, _, labels, point in points(reader):
        if metric == name:
            found[labels] = point.value if isinstance(point, NumberDataPoint) else point
    return found


def labels(**pairs: str) -> Labels:
    return frozenset(pairs.items())


def proto_json(document: Any) -> bytes:
    return json_format.MessageToJson(spb.SubmitRequest(goods_declaration=document)).encode()


async def subscribe_as(running: RunningHub, fmt: str, seconds: float = 1.0) -> list[bytes]:
    """The documents a fresh subscription in ``fmt`` receives before its deadline."""
    documents: list[bytes] = []
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="metrics", format=fmt), timeout=seconds
        )
        try:
            async for message in stream:
                documents.append(message.document)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
    return documents


async def test_a_message_moves_counters_and_histograms_on_both_hubs(
    federation: Federation,
) -> None:
    cn, cn_reader = await start(federation, "CN")
    # NZ is down: the declaration waits in CN's outbox, and attempts fail
    raw = spb.RawDocument(format="proto-json", content=proto_json(sample_declaration()))
    [queued] = await submit(cn, spb.SubmitRequest(raw=raw))
    assert queued.recipient == "NZ"
    await cn.hub.metrics.refresh()
    assert values(cn_reader, "customs_hub.outbox.depth")[labels(partner="NZ")] == 1
    assert values(cn_reader, "customs_hub.outbox.depth")[labels(partner="SG")] == 0
    first_age = values(cn_reader, "customs_hub.outbox.oldest_age")[labels(partner="NZ")]
    await eventually(
        lambda: (
            values(cn_reader, "customs_hub.delivery.attempts").get(
                labels(partner="NZ", outcome="failed"), 0
            )
            >= 1
        )
    )
    await cn.hub.metrics.refresh()
    later_age = values(cn_reader, "customs_hub.outbox.oldest_age")[labels(partner="NZ")]
    assert later_age > first_age >= 0

    nz, nz_reader = await start(federation, "NZ")
    declaration = labels(partner="NZ", type="GoodsDeclaration")
    await eventually(
        lambda: (
            values(cn_reader, "customs_hub.messages.sent").get(
                labels(partner="NZ", type="GoodsDeclaration", outcome="accepted")
            )
            == 1
        )
    )
    assert values(cn_reader, "customs_hub.messages.queued") == {declaration: 1}
    attempts = values(cn_reader, "customs_hub.delivery.attempts")
    assert attempts[labels(partner="NZ", outcome="delivered")] == 1
    [latency] = values(cn_reader, "customs_hub.delivery.latency").items()
    assert latency[0] == labels(partner="NZ") and latency[1].count == 1
    # queued before NZ started and after CN's attempts failed: at least the first age
    assert latency[1].sum >= first_age
    # it took the failed attempts and the one that was answered
    failed = attempts[labels(partner="NZ", outcome="failed")]
    [tries] = values(cn_reader, "customs_hub.delivery.attempts_per_message").values()
    assert tries.count == 1 and tries.sum == failed + 1 >= 2
    commits = values(cn_reader, "customs_hub.store.commit.duration")
    assert {dict(k)["lane"] for k in commits} == {"outbound", "receipts"}
    assert all(p.count >= 1 and p.sum > 0 for p in commits.values())
    translations = values(cn_reader, "customs_hub.translation.duration")
    assert translations[labels(format="proto-json", direction="decode")].count == 1
    await cn.hub.metrics.refresh()
    assert values(cn_reader, "customs_hub.outbox.depth")[labels(partner="NZ")] == 0

    # NZ counted the message in, committed it on its inbound lane, and encodes it for a
    # subscriber who asks for proto-json
    received = values(nz_reader, "customs_hub.messages.received")
    assert received == {labels(partner="CN", type="GoodsDeclaration", outcome="accepted"): 1}
    assert labels(lane="inbound") in values(nz_reader, "customs_hub.store.commit.duration")
    assert len(await subscribe_as(nz, "proto-json")) == 1
    translations = values(nz_reader, "customs_hub.translation.duration")
    assert translations[labels(format="proto-json", direction="encode")].count == 1

    # the same envelope again is a duplicate; one signed by another is a rejection
    envelope = (await cn.hub.store.views.outbound())[0][0].envelope
    client = as_partner(federation.pki, "CN", nz)
    try:
        again = await client.deliver("NZ", envelope, timeout=5)
        assert again.receipt  # answered with the first receipt
        forged, _ = signed_envelope(federation.pki, signer="SG")
        with pytest.raises(grpc.aio.AioRpcError):
            await client.deliver("NZ", forged, timeout=5)
    finally:
        await client.close()
    received = values(nz_reader, "customs_hub.messages.received")
    assert received[labels(partner="CN", type="GoodsDeclaration", outcome="duplicate")] == 1
    assert received[labels(partner="CN", type="GoodsDeclaration", outcome="rejected")] == 1
    rejections = values(nz_reader, "customs_hub.rejections")
    assert rejections == {labels(reason="signature-invalid", source="CN"): 1}

    # checkpoint age and certificates' days to expiry
    await nz.hub.audit.checkpoint()
    await nz.hub.metrics.refresh()
    [age] = values(nz_reader, "customs_hub.checkpoint.age").values()
    assert 0 <= age < 3600
    expiry = values(nz_reader, "customs_hub.certificate.days_to_expiry")
    uses = {(dict(k)["party"], dict(k)["use"]) for k in expiry}
    assert ("NZ", "tls") in uses and ("NZ", "signing") in uses
    assert {("CN", "anchor"), ("SG", "anchor"), ("CN", "signing")} <= uses
    validity = DEV_VALIDITY.days
    assert all(validity - 2 < days <= validity for days in expiry.values()), expiry


async def test_rejections_of_domestic_documents_by_reason(federation: Federation) -> None:
    cn, reader = await start(federation, "CN")
    bad = spb.RawDocument(format="proto-json", content=b'{"goodsDeclaration": 1}')
    with pytest.raises(grpc.aio.AioRpcError):
        await submit(cn, spb.SubmitRequest(raw=bad))
    with pytest.raises(grpc.aio.AioRpcError):
        await submit(
            cn, spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["ZZ"])
        )
    rejections = values(reader, "customs_hub.rejections")
    assert sum(rejections.values()) == 2
    assert {dict(k)["source"] for k in rejections} == {"domestic"}
    assert all(dict(k)["reason"] in REASONS for k in rejections)


def closed_sets(running: RunningHub) -> dict[str, set[str]]:
    """Every value each label may take."""
    partners = set(running.config.partners) | {m.OTHER}
    return {
        m.PARTNER: partners,
        m.SOURCE: partners | m.SOURCES,
        m.PARTY: partners | {running.config.party},
        m.TYPE: m.SHORT_TYPES | {m.OTHER},
        m.REASON: set(REASONS) | {m.OTHER},
        m.OUTCOME: {m.ACCEPTED, m.DUPLICATE, m.REJECTED, m.DELIVERED, m.RETRY, m.FAILED},
        m.FORMAT: set(running.hub.translators.formats) | {m.OTHER},
        m.DIRECTION: {m.DECODE, m.ENCODE},
        m.LANE: {"inbound", "outbound", "receipts"},
        m.USE: {m.TLS, m.SIGNING, m.ANCHOR},
    }


def odd(i: int) -> str:
    """A string nobody configured, different each time."""
    return f"x{i}-{os.urandom(4).hex()}"


async def test_label_values_stay_in_closed_sets_whatever_is_sent(
    federation: Federation,
) -> None:
    nz, reader = await start(federation, "NZ")
    client = as_partner(federation.pki, "CN", nz)
    count = 24
    try:
        for i in range(count):
            good, header = signed_envelope(federation.pki)
            # a header claiming a body type nobody knows, and bytes that are no envelope
            header.body_type = f"customs_hub.v1.{odd(i)}"
            tampered = pb.Envelope.FromString(good)
            tampered.header = header.SerializeToString()
            for data in (tampered.SerializeToString(), os.urandom(40 + i)):
                with pytest.raises(grpc.aio.AioRpcError):
                    await client.deliver("NZ", data, timeout=5)
    finally:
        await client.close()
    for i in range(count):
        tries = [
            spb.SubmitRequest(raw=spb.RawDocument(format=odd(i), content=odd(i).encode())),
            spb.SubmitRequest(raw=spb.RawDocument(format="proto-json", content=odd(i).encode())),
            spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=[odd(i)[:8]]),
        ]
        for request in tries:
            with pytest.raises(grpc.aio.AioRpcError):
                await submit(nz, request)
    # what a caller could hand the methods directly is bounded the same way
    nz.hub.metrics.rejected("folder:" + odd(0), [odd(1)])
    nz.hub.metrics.rejected(odd(2), ["signature-invalid"])
    nz.hub.metrics.translated(odd(3), m.DECODE, 0.001)
    await nz.hub.metrics.refresh()

    allowed = closed_sets(nz)
    series: set[tuple[str, Labels]] = set()
    for name, unit, point_labels, _ in points(reader):
        assert name.startswith("customs_hub.") and unit
        series.add((name, point_labels))
        for key, value in point_labels:
            assert value in allowed[key], f"{name}: {key}={value!r}"
    received = values(reader, "customs_hub.messages.received")
    assert sum(received.values()) == 2 * count
    assert set(received) == {labels(partner="CN", type="other", outcome="rejected")}
    assert sum(values(reader, "customs_hub.rejections").values()) == 5 * count + 2
    assert len(series) < 40, sorted(series)


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


async def test_prometheus_endpoints_serve_each_hub_its_own(federation: Federation) -> None:
    ports = {"CN": free_port(), "NZ": free_port()}
    running = {}
    for party in ("CN", "NZ"):
        config = replace(federation.configs[party].telemetry, prometheus_port=ports[party])
        telemetry = Telemetry(config, party)
        running[party] = await federation.start(party, telemetry=telemetry)
    await submit(running["CN"], spb.SubmitRequest(goods_declaration=sample_declaration()))

    async def sent() -> bool:
        text = await asyncio.to_thread(scrape, ports["CN"])
        return "customs_hub_messages_sent_total" in text

    await eventually(sent)
    cn_text = await asyncio.to_thread(scrape, ports["CN"])
    nz_text = await asyncio.to_thread(scrape, ports["NZ"])
    assert "customs_hub_messages_queued_total" in cn_text
    assert "customs_hub_messages_received_total" in nz_text
    # each endpoint holds its own hub's series only
    assert "customs_hub_messages_received_total" not in cn_text
    assert "customs_hub_messages_queued_total" not in nz_text
    await federation.stop("CN")
    with pytest.raises(OSError):  # stopped with its hub
        await asyncio.to_thread(scrape, ports["CN"])


async def test_a_port_in_use_fails_the_start_naming_the_setting(federation: Federation) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = federation.configs["SG"]
        config = replace(config, telemetry=replace(config.telemetry, prometheus_port=port))
        federation.configs["SG"] = config
        with pytest.raises(ConfigError, match=rf"telemetry\.prometheus_port {port}"):
            await federation.start("SG")
    assert "SG" not in federation.running


@pytest.mark.slow
async def test_a_served_hub_answers_metrics_scrapes(tmp_path: Path) -> None:
    procs = make_federation(tmp_path, PARTIES[:2])
    port = free_port()
    hub = procs[PARTIES[0]]
    text = hub.config_path.read_text()
    hub.config_path.write_text(text + f"\n[telemetry]\nprometheus_port = {port}\n")
    hub.start()
    try:
        await hub.ready()
        async with grpc.aio.insecure_channel(hub.domestic) as channel:
            await sgrpc.DomesticStub(channel).Submit(
                spb.SubmitRequest(goods_declaration=sample_declaration()), timeout=10
            )
        body = await asyncio.to_thread(scrape, port)
        assert "customs_hub_messages_queued_total" in body
        assert "customs_hub_certificate_days_to_expiry" in body
        # a command beside the serving hub does not take its port (nor export as the hub)
        command = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "outbox", "retry", "--config", str(hub.config_path), "--partner", "NZ"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert "no matching dead letters" in command.stderr, command.stderr
        await hub.stop_gracefully()
    finally:
        hub.stop_quietly()


async def test_with_metering_off_nothing_is_measured(federation: Federation) -> None:
    cn = await federation.start("CN")
    assert not cn.hub.metrics.on and cn.metrics_refresh is None
    # no clock is read for anyone: the hooks are not even set
    assert cn.hub.writes.observe is None and cn.hub.translators.observe is None
    assert cn.hub.metrics.queued not in cn.hub.queued_listeners
    [queued] = await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration()))
    assert queued.recipient == "NZ"


def test_the_console_and_otlp_exporters_read_metrics_periodically() -> None:
    [reader] = Telemetry._exporting_readers(TelemetryConfig(exporter="console"))
    assert isinstance(reader, PeriodicExportingMetricReader)
    assert isinstance(reader._exporter, ConsoleMetricExporter)
    assert Telemetry._exporting_readers(TelemetryConfig(prometheus_port=9464)) == []
    reader.shutdown()
    otlp = TelemetryConfig(exporter="otlp", otlp_endpoint="http://127.0.0.1:4317")
    [reader] = Telemetry._exporting_readers(otlp)
    assert type(reader._exporter).__name__ == "OTLPMetricExporter"
    reader.shutdown()


async def test_a_start_that_fails_later_frees_the_prometheus_port(
    federation: Federation,
) -> None:
    port = free_port()
    config = federation.configs["SG"]
    federation.configs["SG"] = replace(
        config, telemetry=replace(config.telemetry, prometheus_port=port)
    )
    listen = int(config.listen.rsplit(":", 1)[1])
    with socket.socket() as taken:  # SG's partner port is someone else's
        taken.bind(("127.0.0.1", listen))
        taken.listen()
        with pytest.raises(ConfigError, match=r"server\.listen"):
            await federation.start("SG")
    with socket.socket() as again:  # the metrics endpoint went with the failed start
        again.bind(("127.0.0.1", port))
