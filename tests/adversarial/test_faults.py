"""Data that would make the store fail (issue 14, family "faults"): business keys and ids too
long, not printable or too many, from a partner and from a domestic system. Each is refused at
the edge with INVALID_ARGUMENT and a reason (not UNAVAILABLE, which a sender retries forever);
nothing is stored or queued; and a write the store refuses all the same fails only the caller
whose data it is, never the others committed with it."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status, sample_control_result, sample_declaration
from hub.core.errors import REASON_KEY, Status, StoreDataError
from hub.core.messages import MAX_KEY_LENGTH
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import RunningHub
from hub.store.db import Store
from hub.store.groupcommit import GroupCommitter
from hub.store.rawsql import Tx
from tests.adversarial.conditions import aeo_envelope, still_serves_sg
from tests.conftest import Federation
from tests.test_exchange import _assert_nothing_accepted, as_partner, refused, signed_envelope

LONG = "C" * 600  # longer than the store's old 512-character key column


def control_with_containers(*containers: str):  # type: ignore[no-untyped-def]
    result = sample_control_result()
    result.functional_reference_id = ""
    del result.container_ids[:]
    result.container_ids.extend(containers)
    return result


@pytest.mark.parametrize(
    ("case", "document"),
    [
        (
            "container ids equal in their first 512 characters",
            control_with_containers(LONG + "1", LONG + "2"),
        ),
        ("an AEO id of 129 characters", sample_aeo_status("CN", "A" * (MAX_KEY_LENGTH + 1))),
        ("an AEO id with a newline", sample_aeo_status("CN", "CNAEO\n1")),
        ("2,000 containers", control_with_containers(*(f"MSKU{i:07d}" for i in range(2000)))),
    ],
)
async def test_a_partners_unkeepable_business_key_is_refused_at_the_edge(
    federation: Federation, pki: Path, case: str, document: object
) -> None:
    nz = await federation.start("NZ")
    trail_before = await nz.hub.store.trail.size()
    data, _ = signed_envelope(pki, document=document)  # type: ignore[arg-type]
    error = await refused(pki, nz, data)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, case
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == "business-key-invalid"
    await _assert_nothing_accepted(nz)
    [rejection] = await nz.hub.store.views.rejections()
    assert (rejection.reason, rejection.source) == ("business-key-invalid", "CN")
    assert await nz.hub.store.trail.size() == trail_before + 1  # the rejection's leaf only
    await still_serves_sg(pki, nz)


async def test_a_control_result_about_many_containers_is_kept_under_a_digest(
    federation: Federation, pki: Path
) -> None:
    """Fifty containers, each id fine, make a state key longer than a column: it is kept as
    their digest, and an older revision about the same containers, in another order, arriving
    after a newer one is recognised as superseded."""
    nz = await federation.start("NZ")
    containers = [f"MSKU{i:07d}" for i in range(50)]
    client_data = []
    for revision in (2, 1):
        containers.reverse()
        result = control_with_containers(*containers)
        result.revision = revision
        client_data.append(signed_envelope(pki, document=result)[0])
    cn = as_partner(pki, "CN", nz)
    try:
        for data in client_data:
            await cn.deliver("NZ", data, timeout=5)
    finally:
        await cn.close()
    rows = await nz.hub.store.views.inbound()
    assert len(rows) == 2 and [r.superseded for r in rows] == [False, True]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("correlation_id", "../../etc/passwd\0", "submission-invalid"),
        ("correlation_id", "x" * 129, "submission-invalid"),
        ("correlation_id", "two words", "submission-invalid"),
        ("lrn", "L" * 200, "business-key-invalid"),
        ("lrn", "LRN\r\nforged", "business-key-invalid"),
    ],
)
async def test_a_domestic_submission_is_held_to_the_partners_rules(
    federation: Federation, pki: Path, field: str, value: str, reason: str
) -> None:
    """What a partner would refuse is refused at submission, not signed, queued and then
    dead-lettered (on PostgreSQL a 200-character id was UNAVAILABLE)."""
    cn = await federation.start("CN")
    declaration = sample_declaration()
    request = spb.SubmitRequest(goods_declaration=declaration, recipients=["NZ"])
    if field == "lrn":
        request.goods_declaration.functional_reference_id = value
    else:
        setattr(request, field, value)
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.Submit(request, timeout=5)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(info.value.trailing_metadata() or ())[REASON_KEY] == reason
        assert await cn.hub.store.views.outbound() == []
        assert [r.reason for r in await cn.hub.store.views.rejections()] == [reason]
        # the next submission is taken
        good = spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"])
        answer = await stub.Submit(good, timeout=5)
        assert [q.recipient for q in answer.queued] == ["NZ"]


async def test_one_callers_refused_data_fails_only_that_caller(store_url: str) -> None:
    """A write the store refuses (a constraint broken, here a duplicate key) in a group commit
    with other callers' writes: the others are committed, and the caller whose data it was
    gets StoreDataError (INTERNAL, not retried), not UNAVAILABLE."""
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        committer = GroupCommitter(store.db.write, name="test")
        created = store.db.time(datetime.now(UTC))

        def insert(tx: Tx, ids: list[str]) -> list[str]:
            tx.many(
                "INSERT INTO submission (submission_id, response, created_at) VALUES (?, ?, ?)",
                [(submission_id, b"", created) for submission_id in ids],
            )
            return ids

        lane = committer.lane("submissions", insert)
        results = await asyncio.gather(
            lane.submit(["good-1"]),
            lane.submit(["twice", "twice"]),
            lane.submit(["good-2", "good-3"]),
            return_exceptions=True,
        )
        await committer.close()
        assert committer.transactions == 2  # one tried for all, failed; then each alone
        assert results[0] == ["good-1"] and results[2] == ["good-2", "good-3"]
        assert isinstance(results[1], StoreDataError)
        assert results[1].status == Status.INTERNAL
        kept = await store.outbox.submissions(["good-1", "good-2", "good-3", "twice"])
        assert sorted(kept) == ["good-1", "good-2", "good-3"]
    finally:
        await store.close()


async def test_a_partner_cannot_fail_another_partners_commit(
    federation: Federation, pki: Path
) -> None:
    """CN's envelopes, refused at the edge, arrive while SG delivers: every one of SG's is
    accepted. (Data that passes the edge and is refused by the store all the same:
    test_data_the_store_refuses_fails_only_its_envelope.)"""
    nz = await federation.start("NZ")
    bad = [
        signed_envelope(pki, document=control_with_containers(LONG + str(i), LONG + "x"))[0]
        for i in range(20)
    ]

    async def attack() -> None:
        for data in bad:
            error = await refused(pki, nz, data)
            assert dict(error.trailing_metadata() or ())[REASON_KEY] == "business-key-invalid"

    async def sg_delivers() -> None:
        for _ in range(5):
            await still_serves_sg_once(pki, nz)

    await asyncio.gather(attack(), sg_delivers())
    assert {m.sender for m in await nz.hub.store.views.inbound()} == {"SG"}
    assert len(await nz.hub.store.views.inbound()) == 5


async def still_serves_sg_once(pki: Path, nz: RunningHub) -> None:
    sg = as_partner(pki, "SG", nz)
    try:
        [receipt] = await sg.exchange("NZ", [aeo_envelope(pki, "SG", "SGAEO1")], timeout=5)
    finally:
        await sg.close()
    assert receipt.signature


async def test_garbage_on_the_domestic_and_audit_ports_is_invalid_argument(
    federation: Federation,
) -> None:
    """Bytes that are not the method's request message get INVALID_ARGUMENT
    request-malformed (gRPC's deserialiser said UNKNOWN), and the port serves on."""
    cn = await federation.start("CN")
    garbage = b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\x7f"
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        for method in ("Submit", "SubmitBatch", "Acknowledge"):
            call = channel.unary_unary(
                f"/customs_hub.v1.Domestic/{method}", request_serializer=None
            )
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call(garbage, timeout=5)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, method
            assert dict(refused.value.trailing_metadata() or ())[REASON_KEY] == (
                "request-malformed"
            )
        subscribe = channel.unary_stream(
            "/customs_hub.v1.Domestic/Subscribe", request_serializer=None
        )(garbage, timeout=5)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in subscribe:
                pass
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        answer = await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]),
            timeout=5,
        )
        assert len(answer.queued) == 1
    audit_channel = grpc.aio.secure_channel(
        f"127.0.0.1:{cn.audit_port}",
        grpc.ssl_channel_credentials((federation.pki / "CN" / "ca.pem").read_bytes()),
    )
    async with audit_channel:
        call = audit_channel.unary_unary("/customs_hub.v1.Audit/Query", request_serializer=None)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(garbage, timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_declaration_no_partner_can_receive_is_refused_at_submission(
    federation: Federation,
) -> None:
    """The domestic port takes 8 MiB; partners take envelopes of 4 MiB. A 7 MiB declaration
    is refused with too-large when it is submitted, not queued and dead-lettered."""
    cn = await federation.start("CN")
    declaration = sample_declaration()
    declaration.goods_shipment.government_agency_goods_item.add().commodity.description = "x" * (
        7 * 1024 * 1024
    )
    async with grpc.aio.insecure_channel(
        cn.config.domestic_listen, options=[("grpc.max_send_message_length", 9 * 1024 * 1024)]
    ) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await sgrpc.DomesticStub(channel).Submit(
                spb.SubmitRequest(goods_declaration=declaration, recipients=["NZ"]), timeout=30
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert dict(refused.value.trailing_metadata() or ())[REASON_KEY] == "too-large"
    assert await cn.hub.store.views.outbound() == []
    assert [r.reason for r in await cn.hub.store.views.rejections()] == ["too-large"]


async def test_data_the_store_refuses_fails_only_its_envelope(tmp_path: Path, pki: Path) -> None:
    """Should the store refuse one envelope's data although the edge let it through (here the
    inbound write is made to raise the driver's IntegrityError for one AEO id), the frame's
    other envelopes are accepted, that one gets a signed REJECTED receipt with
    store-data-refused (final: its sender does not retry it forever), and SG is served."""
    federation = Federation(tmp_path, pki)
    nz = await federation.start("NZ")
    try:
        lane = nz.hub.ingress.commits
        apply = lane.apply

        def poisoned(tx: Tx, items: list) -> list:  # type: ignore[type-arg]
            if any('"CNAEO-POISON"' in item.row.business_keys for item in items):
                raise sqlite3.IntegrityError("UNIQUE constraint failed (made by the test)")
            return apply(tx, items)

        lane.apply = poisoned
        frame = [aeo_envelope(pki, "CN", aeo) for aeo in ("CNAEO1", "CNAEO-POISON", "CNAEO2")]
        cn = as_partner(pki, "CN", nz)
        try:
            receipts = await cn.exchange("NZ", frame, timeout=10)
        finally:
            await cn.close()
        outcomes = [pb.Receipt.FromString(r.receipt) for r in receipts]
        assert [o.outcome for o in outcomes] == [
            pb.RECEIPT_OUTCOME_ACCEPTED,
            pb.RECEIPT_OUTCOME_REJECTED,
            pb.RECEIPT_OUTCOME_ACCEPTED,
        ]
        assert outcomes[1].reason == "store-data-refused"
        assert len(await nz.hub.store.views.inbound()) == 2
        assert [r.reason for r in await nz.hub.store.views.rejections()] == ["store-data-refused"]
        await still_serves_sg(pki, nz, only_sg=False)
    finally:
        await federation.stop_all()
