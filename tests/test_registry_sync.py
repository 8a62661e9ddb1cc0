"""Registry sync between hubs (docs/registry-sync.md): real hubs over mTLS on loopback, real
stores (SQLite and PostgreSQL).

NZ asks CN about AEOs CN issued (PartnerExchange.Query) and receives the answer as if pushed;
CN refuses a partner no agreement lets it send AEO statuses to, and every forged, unsigned,
replayed or oversized question, each with its status, reason and trail rejection and nothing
answered; and a registry that lost updates (a restored old backup) converges with a sync that
fetches only what it lacks.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status
from hub.cli.main import main
from hub.config import load_config
from hub.core.envelope import build_envelope
from hub.core.errors import REASON_KEY, PartnerRefused
from hub.core.messages import AeoStatus
from hub.core.registry import AeoRecord
from hub.core.snapshot import AnswerError, digest, sorted_pairs, status_message_id
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import mr_pb2 as mpb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.pb.customs_hub.v1 import trail_pb2 as tpb
from hub.rpc.channels import QUERY, SNAPSHOT
from hub.runtime import RunningHub
from hub.store.schema import DEAD, TrailQuery
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_exchange import as_partner, eventually, signed_envelope, signer_of

NZ_AGREEMENT = """
[agreements.CN-NZ]
partners = ["NZ"]
status = "in-force"
effective_from = "2025-01-01"
recognises = { security-safety = "security-safety" }
benefits = ["reduced-inspections"]

[agreements.CN-NZ.share.AeoStatus]
send = true
receive = true
fields = ["issuing_administration", "aeo_id", "tin", "programme", "status", "valid_from",
          "valid_to", "revision", "country_code"]
"""
SG_AGREEMENT = """
[agreements.CN-SG]
partners = ["SG"]
status = "in-force"
effective_from = "2025-01-01"
recognises = { full = "full" }
benefits = ["joint-validation"]

[agreements.CN-SG.share.AeoStatus]
send = true
receive = true
"""


def agree(federation: Federation, party: str, *tables: str) -> None:
    """``party``'s hub.toml with these [agreements] tables, read again."""
    path = federation.configs[party].path
    path.write_text(path.read_text() + "".join(tables))
    federation.configs[party] = load_config(path)


def cn_status(aeo_id: str, revision: int = 1) -> AeoStatus:
    status = sample_aeo_status("CN", aeo_id)
    status.revision, status.country_code = revision, "CN"
    status.reason = "renewed after validation"  # what the CN-NZ agreement does not share
    return status


async def submit_statuses(cn: RunningHub, statuses: list[AeoStatus], to: list[str]) -> None:
    """CN's domestic AEO programme submits statuses (recorded in CN's registry as CN's)."""
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        for start in range(0, len(statuses), 200):
            answer = await stub.SubmitBatch(
                spb.SubmitBatchRequest(
                    requests=[
                        spb.SubmitRequest(aeo_status=s, recipients=to)
                        for s in statuses[start : start + 200]
                    ]
                ),
                timeout=60,
            )
            assert all(r.WhichOneof("result") == "queued" for r in answer.results), answer


async def answered(running: RunningHub, partner: str) -> list[tpb.TrailEvent]:
    found = await running.hub.store.trail.query(
        TrailQuery(kinds=("answered",), party=partner, limit=1000)
    )
    return [trail.decode(leaf) for _, leaf in found]


async def rejections(running: RunningHub, source: str) -> list[str]:
    return [r.reason for r in await running.hub.store.views.rejections(source)]


async def cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


def request(
    pki: Path,
    document: object,
    *,
    signer: str = "NZ",
    sender: str = "NZ",
    ttl: timedelta = timedelta(minutes=5),
) -> bytes:
    data, _ = build_envelope(
        signer_of(pki, signer),
        sender=sender,
        recipient="CN",
        document=document,  # type: ignore[arg-type]
        created_at=datetime.now(UTC),
        ttl=ttl,
    )
    return data


async def ask_raw(pki: Path, cn: RunningHub, method: str, data: bytes) -> grpc.aio.AioRpcError:
    """Call CN's Query or Snapshot as NZ with ``data`` and return the refusal."""
    client = as_partner(pki, "NZ", cn)
    try:
        call = client.channel("CN").unary_unary(method)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call(data, timeout=10)
    finally:
        await client.close()
    return info.value


def reason_of(error: grpc.aio.AioRpcError) -> str:
    return str(dict(error.trailing_metadata() or ()).get(REASON_KEY))


async def test_a_query_is_answered_under_the_policy_and_received_as_if_pushed(
    federation: Federation, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agree(federation, "CN", NZ_AGREEMENT, SG_AGREEMENT)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    # CN's programme grants two statuses, pushed to SG only (SG is down: they wait there)
    await submit_statuses(cn, [cn_status("CNAEO1", 3), cn_status("CNAEO2", 1)], ["SG"])
    assert [
        (r.aeo_id, r.revision) for r in await cn.hub.store.registry.issued("CN", ["CNAEO1"])
    ] == [("CNAEO1", 3)]
    assert await nz.hub.store.registry.issued("CN", ["CNAEO1"]) == []

    assert nz.registry_sync is not None
    report = await nz.registry_sync.query("CN", ["CNAEO1", "CNAEO9"])
    [fetched] = report.statuses
    assert (fetched.aeo_id, fetched.revision, fetched.outcome) == ("CNAEO1", 3, "accepted")
    assert list(report.not_found) == ["CNAEO9"]
    assert fetched.message_id == status_message_id("CN", "NZ", "CNAEO1", 3)

    # in NZ's registry as CN's, with what the agreement shares and nothing else
    [record] = await nz.hub.store.registry.issued("CN", ["CNAEO1"])
    assert record.revision == 3 and record.tin == "NZ9429041234567"
    kept = AeoStatus.FromString(record.document)
    assert kept.reason == "" and kept.name == "" and kept.aeo_id == "CNAEO1"
    # in NZ's trail as received, with the leaf its receipt names
    [leaf] = await nz.hub.store.trail.query(TrailQuery(message_id=fetched.message_id))
    assert leaf[0] == fetched.trail_index and trail.decode(leaf[1]).kind == "received"
    # in CN's trail: what it shared with whom
    [shared] = await answered(cn, "NZ")
    assert shared.sender == "NZ" and shared.body_type == "customs_hub.v1.AeoQuery"
    assert [(k.name, k.value) for k in shared.keys] == [("aeo", "CNAEO1")]
    assert shared.agreement == "CN-NZ" and len(shared.policy_digest) == 64

    # asked again (through the command line): held already, nothing received twice
    capsys.readouterr()
    toml = str(federation.configs["NZ"].path)
    code = await cli(
        "registry", "query", "--config", toml, "--partner", "CN", "--aeo", "CNAEO1", "--json"
    )
    out = capsys.readouterr().out
    assert code == 0, out
    [again] = json.loads(out)["statuses"]
    assert (again["aeo_id"], again["outcome"]) == ("CNAEO1", "held")
    inbound = [m.message_id for m in await nz.hub.store.views.inbound()]
    assert inbound == [fetched.message_id]


async def test_a_partner_no_agreement_covers_is_refused_and_nothing_answered(
    federation: Federation, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agree(federation, "CN", SG_AGREEMENT)  # agreements, but none with NZ
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await submit_statuses(cn, [cn_status("CNAEO1")], ["SG"])

    assert nz.registry_sync is not None
    with pytest.raises(PartnerRefused) as info:
        await nz.registry_sync.query("CN", ["CNAEO1"])
    assert info.value.partner_reason == "not-covered-by-agreement"
    error = await ask_raw(pki, cn, QUERY, request(pki, mpb.AeoQuery(aeo_ids=["CNAEO1"])))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert reason_of(error) == "not-covered-by-agreement"
    snapshot = await ask_raw(pki, cn, SNAPSHOT, request(pki, mpb.AeoSnapshotRequest()))
    assert reason_of(snapshot) == "not-covered-by-agreement"
    # the command line says so, naming the partner's reason
    capsys.readouterr()
    toml = str(federation.configs["NZ"].path)
    assert await cli("registry", "sync", "--config", toml, "--partner", "CN") == 2
    assert "not-covered-by-agreement" in capsys.readouterr().err

    # nothing answered, each refusal recorded; nothing in NZ's registry
    assert await answered(cn, "NZ") == []
    assert (await rejections(cn, "NZ")).count("not-covered-by-agreement") == 4
    assert await nz.hub.store.registry.revisions("CN") == []
    # CN still serves: SG's question is answered
    sg = await federation.start("SG")
    assert sg.registry_sync is not None
    report = await sg.registry_sync.query("CN", ["CNAEO1"])
    # "held" when CN's own push of the status (queued for SG above) reached SG first
    assert [s.outcome for s in report.statuses] in (["accepted"], ["held"])
    assert [aeo for aeo, _ in await sg.hub.store.registry.revisions("CN")] == ["CNAEO1"]


async def test_forged_unsigned_replayed_and_oversized_questions_are_refused(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")  # no agreements: the routes send NZ AEO statuses
    await submit_statuses(cn, [cn_status("CNAEO1")], [])
    query = mpb.AeoQuery(aeo_ids=["CNAEO1"])
    unsigned = pb.Envelope.FromString(request(pki, query))
    del unsigned.signatures[:]
    cases = [
        # signed with SG's key but claiming to be NZ (NZ's connection)
        (request(pki, query, signer="SG"), "signature-invalid", grpc.StatusCode.UNAUTHENTICATED),
        (unsigned.SerializeToString(), "signature-missing", grpc.StatusCode.UNAUTHENTICATED),
        # SG's question, signed by SG, sent on NZ's connection
        (request(pki, query, signer="SG", sender="SG"), "signature-invalid", None),
        # a business message is no question
        (request(pki, cn_status("CNAEO1")), "unsupported-body-type", None),
        (
            request(pki, mpb.AeoQuery(aeo_ids=[f"CNAEO{i}" for i in range(1001)])),
            "limit-exceeded",
            grpc.StatusCode.RESOURCE_EXHAUSTED,
        ),
        (request(pki, mpb.AeoQuery()), "query-invalid", grpc.StatusCode.INVALID_ARGUMENT),
        (request(pki, query, ttl=timedelta(hours=1)), "lifetime-invalid", None),
        (b"\xff not an envelope", "envelope-malformed", None),
    ]
    for data, reason, code in cases:
        error = await ask_raw(pki, cn, QUERY, data)
        assert reason_of(error) == reason, (reason, error.details())
        if code is not None:
            assert error.code() == code
    ranges = mpb.AeoSnapshotRequest(ranges=[mpb.AeoRange(from_id=f"A{i}") for i in range(65)])
    error = await ask_raw(pki, cn, SNAPSHOT, request(pki, ranges))
    assert reason_of(error) == "limit-exceeded"

    # the same question twice: answered once
    once = request(pki, query)
    client = as_partner(pki, "NZ", cn)
    try:
        answer = await client.query("CN", once, timeout=10)
        assert pb.Header.FromString(pb.Envelope.FromString(answer).header).recipient == "NZ"
        with pytest.raises(PartnerRefused) as replayed:
            await client.query("CN", once, timeout=10)
        assert replayed.value.partner_reason == "query-replayed"
        # a question is no business message either
        with pytest.raises(grpc.aio.AioRpcError) as delivered:
            await client.deliver("CN", request(pki, query), timeout=10)
        assert reason_of(delivered.value) == "unsupported-body-type"
    finally:
        await client.close()

    refused = await rejections(cn, "NZ")
    for _, reason, _ in cases:
        assert reason in refused
    assert {"query-replayed", "limit-exceeded", "unsupported-body-type"} <= set(refused)
    assert len(await answered(cn, "NZ")) == 1
    assert [m.message_id for m in await cn.hub.store.views.inbound()] == []


async def sync_report(federation: Federation, capsys: pytest.CaptureFixture[str]) -> dict:  # type: ignore[type-arg]
    capsys.readouterr()
    toml = str(federation.configs["NZ"].path)
    code = await cli("registry", "sync", "--config", toml, "--partner", "CN", "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)  # type: ignore[no-any-return]


def set_ttl(federation: Federation, party: str, seconds: int) -> None:
    """``party``'s hub.toml with another message lifetime, read again."""
    path = federation.configs[party].path
    text = path.read_text()
    start = text.index("message_ttl_seconds = ")
    end = text.index("\n", start)
    path.write_text(f"{text[:start]}message_ttl_seconds = {seconds}{text[end:]}")
    federation.configs[party] = load_config(path)


async def test_a_registry_that_lost_updates_converges_fetching_only_what_it_lacks(
    federation: Federation, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cn = await federation.start("CN")  # no agreements: routes push CN's statuses to NZ
    nz = await federation.start("NZ")
    ids = [f"CNAEO{i:05d}" for i in range(300)]  # more than one listed range: bisection
    await submit_statuses(cn, [cn_status(i) for i in ids], ["NZ"])

    async def nz_holds(count: int) -> bool:
        return len(await nz.hub.store.registry.revisions("CN")) == count

    await eventually(lambda: nz_holds(300), timeout=60)
    first = await sync_report(federation, capsys)
    assert first["converged"] and first["fetched"] == [] and first["snapshot_calls"] == 1

    # a long outage: NZ is down while CN's updates for it expire undelivered (dead letters,
    # which nothing sends again by itself)
    await federation.stop("NZ")
    await federation.stop("CN")
    set_ttl(federation, "CN", 1)
    cn = await federation.start("CN")
    updated, new = ids[7:250:20], ["CNAEO90001", "CNAEO90002", "CNAEO00150A"]
    await submit_statuses(
        cn, [cn_status(i, 2) for i in updated] + [cn_status(i) for i in new], ["NZ"]
    )

    async def expired() -> bool:
        entries = await cn.hub.store.views.outbox()
        return len([e for e in entries if e.partner == "NZ" and e.state == DEAD]) == len(
            updated + new
        )

    await eventually(expired, timeout=30)
    await federation.stop("CN")
    set_ttl(federation, "CN", 604800)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    assert len(await nz.hub.store.registry.revisions("CN")) == 300

    ours = sorted_pairs(await cn.hub.store.registry.revisions("CN"))
    report = await sync_report(federation, capsys)
    assert report["partner_count"] == len(ours) == 303
    assert report["partner_root"] == digest(ours).root.hex()
    assert report["count_before"] == 300 and report["root_before"] != report["partner_root"]
    assert sorted(s["aeo_id"] for s in report["fetched"]) == sorted(updated + new)
    assert {s["outcome"] for s in report["fetched"]} == {"accepted"}
    assert report["rounds"] >= 1 and report["snapshot_calls"] <= 4
    assert report["converged"] and report["complete"]
    assert report["root_after"] == report["partner_root"]
    assert sorted_pairs(await nz.hub.store.registry.revisions("CN")) == ours
    # received as pushed ones are: each with its "received" leaf in NZ's trail
    for fetched in report["fetched"]:
        [(index, leaf)] = await nz.hub.store.trail.query(
            TrailQuery(message_id=fetched["message_id"])
        )
        assert index == fetched["trail_index"] and trail.decode(leaf).kind == "received"

    # once equal, a sync compares one digest and fetches nothing
    quiet = await sync_report(federation, capsys)
    assert quiet["converged"] and quiet["fetched"] == [] and quiet["snapshot_calls"] == 1
    assert quiet["only_here"] == [] and quiet["newer_here"] == []


def own_records(party: str, count: int) -> list[AeoRecord]:
    """``count`` AEOs ``party`` issued, as its registry holds them (written directly: the
    domestic path would take minutes for this many)."""
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        status = cn_status(f"{party}AEO{i:06d}", 1 + i % 3)
        out.append(
            AeoRecord(
                party=party,
                aeo_id=status.aeo_id,
                tin=status.tin,
                name=status.name,
                programme="security-safety",
                status="granted",
                valid_from="2025-01-01",
                valid_to="",
                revision=status.revision,
                country_code=party,
                message_id=str(uuid.uuid4()),
                trail_index=i,
                received_at=now,
                document=status.SerializeToString(deterministic=True),
            )
        )
    return out


async def test_a_snapshot_of_a_large_list_leaves_other_partners_served(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")  # no agreements: the routes send NZ AEO statuses
    records = own_records("CN", 20_000)
    for start in range(0, len(records), 5000):
        chunk = records[start : start + 5000]
        await cn.hub.store.db.write(lambda tx, c=chunk: cn.hub.store.registry.write_in(tx, c))  # type: ignore[misc]
    ours = sorted_pairs((r.aeo_id, r.revision) for r in records)

    # 64 copies of the whole list: refused before any digest is made
    copies = mpb.AeoSnapshotRequest(ranges=[mpb.AeoRange()] * 64)
    error = await ask_raw(pki, cn, SNAPSHOT, request(pki, copies))
    assert (reason_of(error), error.code()) == ("query-invalid", grpc.StatusCode.INVALID_ARGUMENT)
    assert "query-invalid" in await rejections(cn, "NZ")
    assert await answered(cn, "NZ") == []

    # 64 disjoint ranges covering the whole list (every id digested once, off the loop), while
    # SG delivers a declaration: both answered
    cuts = [ours[i * len(ours) // 64][0] for i in range(1, 64)]
    ends = ["", *cuts, ""]
    ranges = [mpb.AeoRange(from_id=a, to_id=b) for a, b in itertools.pairwise(ends)]
    nz_client, sg_client = as_partner(pki, "NZ", cn), as_partner(pki, "SG", cn)
    try:
        ask = asyncio.ensure_future(
            nz_client.snapshot(
                "CN", request(pki, mpb.AeoSnapshotRequest(ranges=ranges)), timeout=120
            )
        )
        await asyncio.sleep(0.05)
        data, _ = signed_envelope(pki, "SG", sender="SG", recipient="CN")
        receipt = await asyncio.wait_for(sg_client.deliver("CN", data, timeout=30), 30)
        assert pb.Receipt.FromString(receipt.receipt).outcome == pb.RECEIPT_OUTCOME_ACCEPTED
        answer = mpb.AeoSnapshot.FromString(pb.Envelope.FromString(await ask).body)
    finally:
        await nz_client.close()
        await sg_client.close()
    assert sum(r.count for r in answer.ranges) == len(ours)
    for asked, made in zip(ranges, answer.ranges, strict=True):
        span = [
            p for p in ours if p[0] >= asked.from_id and (not asked.to_id or p[0] < asked.to_id)
        ]
        assert (made.count, made.root) == (len(span), digest(span).root)
    assert len(await answered(cn, "NZ")) == 1


async def settled(nz: RunningHub) -> tuple[list[tuple[str, int]], list[str]]:
    """NZ's registry of CN's AEOs and its inbound messages, once CN's pushes of its two statuses
    have arrived (the routes push CN's statuses to NZ)."""

    async def pushed() -> bool:
        return len(await nz.hub.store.registry.revisions("CN")) == 2

    await eventually(pushed, timeout=30)
    inbound = [m.message_id for m in await nz.hub.store.views.inbound()]
    return await nz.hub.store.registry.revisions("CN"), inbound


def patch_answers(cn: RunningHub, change) -> None:  # type: ignore[no-untyped-def]
    """CN's answerer made a misbehaving partner's: ``change(answer, ids)`` alters each answer
    to a query (its statuses still signed by CN) before it is sealed."""
    real = cn.hub.answers._statuses

    def statuses(peer, opened, ids, records, fields):  # type: ignore[no-untyped-def]
        answer, shared = real(peer, opened, ids, records, fields)
        change(answer, list(ids))
        return answer, shared

    cn.hub.answers._statuses = statuses  # type: ignore[method-assign]


async def test_an_answer_that_keeps_deferring_what_it_answers_is_refused_after_one_round(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await submit_statuses(cn, [cn_status("CNAEO1", 2), cn_status("CNAEO2", 2)], [])
    before = await settled(nz)

    # one valid status (newer than NZ holds), and every id asked (that status's id too)
    # deferred: asked again, the same answer would come back for ever
    def defer_all(answer: mpb.AeoQueryAnswer, ids: list[str]) -> None:
        data, _ = build_envelope(
            cn.hub.signer,
            sender="CN",
            recipient="NZ",
            document=cn_status("CNAEO1", 5),
            created_at=datetime.now(UTC),
            ttl=timedelta(days=1),
        )
        answer.statuses[:] = [data]
        answer.deferred.extend(ids)

    patch_answers(cn, defer_all)
    assert nz.registry_sync is not None
    with pytest.raises(AnswerError) as info:
        await nz.registry_sync.query("CN", ["CNAEO1", "CNAEO2"])
    assert info.value.reason == "answer-invalid"
    assert len(await answered(cn, "NZ")) == 1  # one round
    assert await settled(nz) == before  # nothing of the answer received


async def test_a_status_not_asked_for_or_of_a_third_party_in_an_answer_is_not_received(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await submit_statuses(cn, [cn_status("CNAEO1"), cn_status("CNAEO2")], [])
    before = await settled(nz)
    assert nz.registry_sync is not None

    def slip_in(answer: mpb.AeoQueryAnswer, ids: list[str]) -> None:  # a status not asked for
        data, _ = build_envelope(
            cn.hub.signer,
            sender="CN",
            recipient="NZ",
            document=cn_status("CNAEO2", 5),
            created_at=datetime.now(UTC),
            ttl=timedelta(days=1),
        )
        answer.statuses.append(data)

    patch_answers(cn, slip_in)
    with pytest.raises(AnswerError) as info:
        await nz.registry_sync.query("CN", ["CNAEO1"])
    assert info.value.reason == "answer-invalid"
    assert await settled(nz) == before

    def third_party(answer: mpb.AeoQueryAnswer, ids: list[str]) -> None:
        # SG's status for an id asked, signed and sent by CN: CN may not speak for SG
        status = sample_aeo_status("SG", ids[0])
        status.revision, status.country_code = 7, "SG"
        data, _ = build_envelope(
            cn.hub.signer,
            sender="CN",
            recipient="NZ",
            document=status,
            created_at=datetime.now(UTC),
            ttl=timedelta(days=1),
        )
        answer.statuses[:] = [data]

    patch_answers(cn, third_party)
    report = await nz.registry_sync.query("CN", ["CNAEO1"])
    [fetched] = report.statuses
    assert (fetched.aeo_id, fetched.outcome, fetched.reason) == ("CNAEO1", "rejected", "not-issuer")
    assert await settled(nz) == before
    assert await nz.hub.store.registry.issued("SG", ["CNAEO1"]) == []
    assert "not-issuer" in await rejections(nz, "CN")
