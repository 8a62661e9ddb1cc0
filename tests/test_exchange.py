"""Real hubs, real mTLS on loopback, real stores: the spine end to end.

Every rejection test also checks the state afterwards: nothing stored as accepted, nothing
handed to a domestic subscriber, and the rejection recorded with its reason.
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from google.protobuf.message import Message

from hub.cli.demo import sample_aeo_status, sample_declaration
from hub.core.envelope import build_envelope, sha256, verify_receipt
from hub.core.errors import REASON_KEY
from hub.core.signing import Signer
from hub.core.trust import verification_key_of
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.channels import PartnerChannels, PartnerEndpoint
from hub.runtime import RunningHub
from tests.conftest import Federation

WAIT = 15.0


async def eventually(predicate, timeout: float = WAIT):  # type: ignore[no-untyped-def]
    """What ``predicate()`` (sync or async) gives once it is true; AssertionError if it is
    not within ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def submit(running: RunningHub, request: spb.SubmitRequest) -> list[spb.Queued]:
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        return list((await sgrpc.DomesticStub(channel).Submit(request, timeout=10)).queued)


def as_partner(
    pki: Path, party: str, target: RunningHub, *, tls_from: Path | None = None
) -> PartnerChannels:
    """A raw PartnerExchange client holding ``party``'s TLS certificate (or a rogue one)."""
    src = (tls_from or pki) / party
    return PartnerChannels(
        (src / "tls.pem").read_bytes(),
        (src / "tls.key").read_bytes(),
        {
            target.config.party: PartnerEndpoint(
                target.config.party,
                f"127.0.0.1:{target.partner_port}",
                (pki / target.config.party / "ca.pem").read_bytes(),
            )
        },
    )


def signer_of(pki: Path, party: str) -> Signer:
    return Signer.from_pem((pki / party / "signing.key").read_bytes())


def nz_signing_key(pki: Path):  # type: ignore[no-untyped-def]
    cert = x509.load_pem_x509_certificate((pki / "NZ" / "signing.pem").read_bytes())
    key = verification_key_of(cert, "NZ")
    return {key.key_id: key}


def signed_envelope(
    pki: Path,
    signer: str = "CN",
    *,
    sender: str = "CN",
    recipient: str = "NZ",
    offset: timedelta = timedelta(0),
    ttl: timedelta = timedelta(days=1),
    document: Message | None = None,
    message_id: str | None = None,
    correlation_id: str = "",
) -> tuple[bytes, pb.Header]:
    """An envelope (a declaration unless told otherwise) signed with ``signer``'s key."""
    return build_envelope(
        signer_of(pki, signer),
        sender=sender,
        recipient=recipient,
        document=document or sample_declaration(),
        created_at=datetime.now(UTC) + offset,
        ttl=ttl,
        message_id=message_id,
        correlation_id=correlation_id,
    )


async def refused(
    pki: Path, target: RunningHub, data: bytes, tls_from: Path | None = None
) -> grpc.aio.AioRpcError:
    """Deliver as CN (or with CN's TLS files from ``tls_from``) and return the refusal."""
    client = as_partner(pki, "CN", target, tls_from=tls_from)
    try:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await client.deliver(target.config.party, data, timeout=5)
    finally:
        await client.close()
    return info.value


async def test_declaration_from_cn_reaches_nz_with_verified_receipt(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    queued = await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration()))
    assert [q.recipient for q in queued] == ["NZ"]  # routed by destination country
    message_id = queued[0].message_id

    async def receipt_stored():  # type: ignore[no-untyped-def]
        rows = await cn.hub.store.views.outbound()
        return rows if rows and rows[0][1] is not None else None

    [(outbound, record)] = await eventually(receipt_stored)
    assert record is not None
    assert record.outcome == "accepted" and outbound.status == "delivered"
    # NZ stored exactly the declaration CN signed
    [inbound] = await nz.hub.store.views.inbound()
    assert inbound.message_id == message_id and inbound.sender == "CN"
    assert sample_declaration().__class__.FromString(inbound.body) == sample_declaration()
    # the receipt verifies with NZ's signing certificate, read from NZ's own PKI files, and
    # names the digest of the exact envelope bytes CN sent
    receipt = verify_receipt(
        pb.SignedReceipt.FromString(record.signed_receipt), "NZ", nz_signing_key(pki)
    )
    assert receipt.message_id == message_id
    assert receipt.envelope_digest == sha256(outbound.envelope) == inbound.envelope_digest
    assert receipt.outcome == pb.RECEIPT_OUTCOME_ACCEPTED
    assert (await cn.hub.store.views.outbox()) == []


async def handed_over(
    target: RunningHub, subscriber: str = "risk", seconds: float = 0.5
) -> list[str]:
    """Message ids a fresh subscription receives before its deadline ends it."""
    ids: list[str] = []
    async with grpc.aio.insecure_channel(target.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber=subscriber), timeout=seconds
        )
        try:
            async for message in stream:
                ids.append(message.message_id)
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
    return ids


async def _assert_nothing_accepted(nz: RunningHub) -> None:
    assert await nz.hub.store.views.inbound() == []
    assert await handed_over(nz) == [], "a rejected message reached a domestic subscriber"


def forged_tls(pki: Path, tmp_path: Path) -> Path:
    """A folder holding CN/tls.pem and CN/tls.key: a TLS certificate naming CN, issued by SG's
    CA (trusted on NZ's partner port, but for SG only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from hub.cli.pki import issue, write_cert, write_key

    sg_ca = x509.load_pem_x509_certificate((pki / "SG" / "ca.pem").read_bytes())
    sg_ca_key = serialization.load_pem_private_key((pki / "SG" / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    forged = issue(
        "CN", "forged TLS", key.public_key(), sg_ca, sg_ca_key, datetime.now(UTC), tls=True
    )  # type: ignore[arg-type]
    forged_dir = tmp_path / "forged"
    (forged_dir / "CN").mkdir(parents=True)
    write_cert(forged_dir / "CN" / "tls.pem", forged)
    write_key(forged_dir / "CN" / "tls.key", key)
    return forged_dir


async def test_exchange_stream_answers_each_envelope(federation: Federation, pki: Path) -> None:
    nz = await federation.start("NZ")
    cn = signer_of(pki, "CN")
    good = [
        build_envelope(
            cn,
            sender="CN",
            recipient="NZ",
            document=sample_aeo_status("CN"),
            created_at=datetime.now(UTC),
            ttl=timedelta(days=1),
        )[0]
        for _ in range(5)
    ]
    bad = build_envelope(
        cn,
        sender="CN",
        recipient="SG",
        document=sample_aeo_status("CN"),
        created_at=datetime.now(UTC),
        ttl=timedelta(days=1),
    )[0]
    client = as_partner(pki, "CN", nz)
    try:
        receipts = await client.exchange("NZ", [*good[:2], bad, *good[2:]], timeout=5)
    finally:
        await client.close()
    outcomes = [verify_receipt(r, "NZ", nz_signing_key(pki)).outcome for r in receipts]
    assert outcomes == [1, 1, pb.RECEIPT_OUTCOME_REJECTED, 1, 1, 1]
    assert len(await nz.hub.store.views.inbound()) == 5
    assert [r.reason for r in await nz.hub.store.views.rejections()] == ["wrong-recipient"]


@pytest.mark.slow
async def test_subscriber_resumes_after_restart(federation: Federation, pki: Path) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]))
    first = sample_declaration()
    first.functional_reference_id = "LRN-SECOND"
    await submit(cn, spb.SubmitRequest(goods_declaration=first, recipients=["NZ"]))

    async def two_arrived():  # type: ignore[no-untyped-def]
        return len(await nz.hub.store.views.inbound()) == 2

    await eventually(two_arrived)
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        stream = stub.Subscribe(spb.SubscribeRequest(subscriber="risk-engine"))
        got = await stream.read()
        assert got.sender == "CN" and got.body_type == "customs_hub.v1.GoodsDeclaration"
        await stub.Acknowledge(spb.AcknowledgeRequest(subscriber="risk-engine", cursor=got.cursor))
        second = await stream.read()  # read but not acknowledged
        stream.cancel()
    await federation.stop("NZ")
    nz = await federation.start("NZ")
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        stream = stub.Subscribe(spb.SubscribeRequest(subscriber="risk-engine"))
        again = await stream.read()
        # resumes after the acknowledged one: the unacknowledged one again, nothing earlier
        assert again.message_id == second.message_id and again.cursor == second.cursor
        await stub.Acknowledge(
            spb.AcknowledgeRequest(subscriber="risk-engine", cursor=again.cursor)
        )
        # a new message arrives on the open stream
        third = sample_declaration()
        third.functional_reference_id = "LRN-THIRD"
        [queued] = await submit(cn, spb.SubmitRequest(goods_declaration=third, recipients=["NZ"]))
        live = await asyncio.wait_for(stream.read(), WAIT)
        assert live.message_id == queued.message_id
        stream.cancel()
    assert got.message_id != second.message_id


async def test_outbox_keeps_messages_while_partner_is_down(federation: Federation) -> None:
    cn = await federation.start("CN")
    [queued] = await submit(cn, spb.SubmitRequest(goods_declaration=sample_declaration()))

    async def attempted():  # type: ignore[no-untyped-def]
        rows = await cn.hub.store.views.outbox()
        return rows and rows[0].attempts >= 1

    await eventually(attempted)
    [entry] = await cn.hub.store.views.outbox()
    assert entry.last_error and "UNAVAILABLE" in entry.last_error
    # NZ comes up; the message is still there and gets delivered
    nz = await federation.start("NZ")
    await cn.hub.store.outbox.record_failure([entry.id or 0], entry.last_error, datetime.now(UTC))
    cn.hub.outbox_changed.notify()

    async def delivered():  # type: ignore[no-untyped-def]
        return [m for m in await nz.hub.store.views.inbound() if m.message_id == queued.message_id]

    await eventually(delivered)

    async def settled():  # type: ignore[no-untyped-def]
        return await cn.hub.store.views.outbox() == []

    await eventually(settled)
    [(message, receipt)] = await cn.hub.store.views.outbound()
    assert message.status == "delivered" and receipt is not None and receipt.outcome == "accepted"


async def test_domestic_submission_errors(federation: Federation) -> None:
    cn = await federation.start("CN")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        cases = [
            (spb.SubmitRequest(), "no-document"),
            (
                spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["AU"]),
                "unknown-partner",
            ),
            (spb.SubmitRequest(aeo_status=pb_aeo(issuing="NZ")), "not-issuer"),
        ]
        for request, reason in cases:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Submit(request, timeout=5)
            assert dict(info.value.trailing_metadata() or ())[REASON_KEY] == reason
    assert await cn.hub.store.views.outbound() == []
    assert [r.reason for r in await cn.hub.store.views.rejections()] == [c[1] for c in cases]


def pb_aeo(issuing: str):  # type: ignore[no-untyped-def]
    status = sample_aeo_status()
    status.issuing_administration = issuing
    return status


async def test_health_on_both_ports_and_reflection_on_the_domestic_port(
    federation: Federation, pki: Path
) -> None:
    """Health answers on both ports (on the partner port to partners only: see
    tests/adversarial/test_resources.py); reflection is offered on the domestic port only,
    and never lists the other port's service."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    nz = await federation.start("NZ")
    creds = grpc.ssl_channel_credentials(
        (pki / "NZ" / "ca.pem").read_bytes(),
        (pki / "CN" / "tls.key").read_bytes(),
        (pki / "CN" / "tls.pem").read_bytes(),
    )
    async with grpc.aio.secure_channel(f"127.0.0.1:{nz.partner_port}", creds) as channel:
        check = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="customs_hub.v1.PartnerExchange"), timeout=5
        )
        assert check.status == health_pb2.HealthCheckResponse.SERVING
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        check = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="customs_hub.v1.Domestic"), timeout=5
        )
        assert check.status == health_pb2.HealthCheckResponse.SERVING
        stream = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5
        )
        names = {s.name async for r in stream for s in r.list_services_response.service}
        assert "customs_hub.v1.Domestic" in names and "grpc.health.v1.Health" in names
        assert "customs_hub.v1.PartnerExchange" not in names


async def test_port_in_use_is_a_clear_error(federation: Federation) -> None:
    import socket

    from hub.core.errors import ConfigError

    cn = federation.configs["CN"]
    with socket.socket() as taken:
        host, port = cn.listen.rsplit(":", 1)
        taken.bind((host, int(port)))
        taken.listen()
        with pytest.raises(ConfigError) as info:
            await federation.start("CN")
    assert info.value.reason == "listen-failed" and cn.listen in str(info.value)


async def test_a_port_another_grpc_server_holds_is_not_shared(federation: Federation) -> None:
    """gRPC servers set SO_REUSEPORT unless told not to: without the hub's option, CN would
    start on the other server's port and the kernel would split partners' calls between them."""
    from hub.core.errors import ConfigError

    cn = federation.configs["CN"]
    other = grpc.aio.server()  # default options, as another gRPC program would have them
    other.add_insecure_port(cn.domestic_listen)
    await other.start()
    try:
        with pytest.raises(ConfigError) as info:
            await federation.start("CN")
        assert info.value.reason == "listen-failed" and cn.domestic_listen in str(info.value)
    finally:
        await other.stop(None)
