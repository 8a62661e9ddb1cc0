"""Recognition with real hubs over real mTLS (issue 18): a partner's AEO status looked up through
CN's Recognition service (recognised under the agreement, with its benefits and the trail index
of the leaf that received it), suspended, looked up as of a past day, with no agreement, in a
batch; a partner's control result found by container and shown in the annotation a domestic
subscriber reads with a partner's declaration; bad lookups refused with their reason while the
service goes on serving. CN's agreements are the demo's (hub/cli/demo.py CN_AGREEMENTS)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from hub.cli import recognition as recognition_cli
from hub.cli.demo import (
    CN_AGREEMENTS,
    sample_aeo_status,
    sample_control_result,
    sample_import_declaration,
)
from hub.cli.main import build_parser
from hub.config import load_config
from hub.core.agreements import BENEFITS
from hub.core.errors import REASON_KEY, RequestError
from hub.core.recognition import (
    MAX_ANNOTATION_STATUSES,
    MAX_CONTROLS,
    MAX_QUERIES,
    MAX_STATUSES,
)
from hub.pb.customs_hub.v1 import aeo_pb2
from hub.pb.customs_hub.v1 import recognition_pb2 as rpb
from hub.pb.customs_hub.v1 import recognition_pb2_grpc as rgrpc
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc import domestic
from hub.rpc.recognition import lookups_of
from hub.runtime import RunningHub
from hub.store.schema import TrailQuery
from tests.conftest import Federation
from tests.test_exchange import WAIT, eventually, submit
from tests.test_registry import incoming, signer, status

AEO_ID = sample_aeo_status().aeo_id
TIN = sample_aeo_status().tin
CN_NZ_BENEFITS = ["reduced-inspections", "priority-treatment", "control-results"]


def with_agreements(federation: Federation, party: str = "CN", text: str = CN_AGREEMENTS) -> None:
    path = federation.root / party / "hub.toml"
    path.write_text(path.read_text() + text)
    federation.configs[party] = load_config(path)


async def lookup(hub: RunningHub, **query: str) -> rpb.OperatorAnswer:
    async with grpc.aio.insecure_channel(hub.config.domestic_listen) as channel:
        stub = rgrpc.RecognitionStub(channel)
        return await stub.LookupOperator(rpb.OperatorQuery(**query), timeout=10)


async def lookup_batch(
    hub: RunningHub, queries: Sequence[rpb.OperatorQuery]
) -> list[rpb.OperatorAnswer]:
    async with grpc.aio.insecure_channel(hub.config.domestic_listen) as channel:
        request = rpb.LookupOperatorsRequest(queries=queries)
        response = await rgrpc.RecognitionStub(channel).LookupOperators(request, timeout=10)
    return list(response.answers)


async def controls(hub: RunningHub, **query: str) -> rpb.LookupControlsResponse:
    async with grpc.aio.insecure_channel(hub.config.domestic_listen) as channel:
        stub = rgrpc.RecognitionStub(channel)
        return await stub.LookupControls(rpb.ControlsQuery(**query), timeout=10)


async def arrived(hub: RunningHub, revision: int) -> rpb.OperatorAnswer:
    async def check() -> rpb.OperatorAnswer | None:
        answer = await lookup(hub, aeo_id=AEO_ID)
        return answer if any(s.revision == revision for s in answer.statuses) else None

    found: rpb.OperatorAnswer = await eventually(check)
    return found


async def received_leaf(hub: RunningHub, message_id: str) -> int:
    [(index, _)] = await hub.hub.store.trail.query(
        TrailQuery(message_id=message_id, kinds=("received",))
    )
    return index


async def cli(capsys: pytest.CaptureFixture[str], hub: RunningHub, *argv: str) -> str:
    """What ``customs-hub recognition ...`` prints, run on the hub's configuration and store."""
    capsys.readouterr()
    args = build_parser().parse_args(["recognition", *argv, "--config", str(hub.config.path)])
    assert await recognition_cli.run(args) == 0
    return capsys.readouterr().out


def suspension(revision: int = 5) -> aeo_pb2.AeoStatus:
    status = sample_aeo_status()
    status.status = aeo_pb2.AEO_STANDING_SUSPENDED
    status.revision = revision
    status.reason = "validation findings under review"
    return status


async def test_a_partners_status_is_recognised_then_suspended_and_looked_up_as_of_a_past_day(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    with_agreements(federation)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    [queued] = await submit(
        nz, spb.SubmitRequest(aeo_status=sample_aeo_status(), recipients=["CN"])
    )
    answer = await arrived(cn, 4)
    today = datetime.now(UTC).date()
    assert answer.as_of == today.isoformat() and answer.recognised
    [status] = answer.statuses
    assert (status.party, status.aeo_id, status.tin, status.name) == (
        "NZ",
        AEO_ID,
        TIN,
        "Kiwi Fresh Exports Ltd",
    )
    assert (status.programme, status.status, status.valid_from, status.revision) == (
        "security-safety",
        "valid",
        "2025-03-01",
        4,
    )
    assert status.recognised and status.reason == ""
    assert (status.agreement_id, status.our_programme) == ("CN-NZ", "security-safety")
    assert [(b.code, b.sentence) for b in status.benefits] == [
        (code, BENEFITS[code]) for code in CN_NZ_BENEFITS
    ]
    # the status used is the one the received message carried, in the leaf that recorded it
    assert status.message_id == queued.message_id
    assert status.trail_index == await received_leaf(cn, queued.message_id)
    # the same operator by TIN
    assert (await lookup(cn, tin=TIN)).statuses == answer.statuses
    # and on the command line, from the store: a line an officer reads, or the service's JSON
    text = await cli(capsys, cn, "lookup", "--aeo", AEO_ID)
    assert f"AEO id {AEO_ID}, as of {today}: recognised" in text
    assert "NZ: NZAEO10077 Kiwi Fresh Exports Ltd" in text
    assert "RECOGNISED under CN-NZ as security-safety: reduced-inspections, " in text
    assert f"trail index {status.trail_index}" in text
    assert f"  control-results: {BENEFITS['control-results']}" in text
    as_json = json.loads(await cli(capsys, cn, "lookup", "--tin", TIN, "--json"))
    assert as_json["recognised"] is True and as_json["statuses"][0]["agreement_id"] == "CN-NZ"
    unknown = await cli(capsys, cn, "lookup", "--aeo", "NZAEO-UNKNOWN")
    assert "no partner has sent a status of this operator: not recognised" in unknown
    with pytest.raises(RequestError, match="as_of must be a date"):
        await cli(capsys, cn, "lookup", "--aeo", AEO_ID, "--as-of", "yesterday")

    # three days on, NZ suspends the status
    await federation.stop("CN")
    later = datetime.now(UTC) + timedelta(days=3)
    cn = await federation.start("CN", clock=lambda: datetime.now(UTC) + timedelta(days=3))
    [second] = await submit(nz, spb.SubmitRequest(aeo_status=suspension(), recipients=["CN"]))
    answer = await arrived(cn, 5)
    assert answer.as_of == later.date().isoformat() and not answer.recognised
    [status] = answer.statuses
    assert (status.status, status.recognised, status.reason) == (
        "suspended",
        False,
        "status-suspended",
    )
    assert status.reason_text and status.agreement_id == "CN-NZ" and not status.benefits
    assert status.trail_index == await received_leaf(cn, second.message_id)
    # as of the day before it arrived: the valid revision, recognised, as then
    before = await lookup(cn, aeo_id=AEO_ID, as_of=(later.date() - timedelta(days=1)).isoformat())
    [status] = before.statuses
    assert (status.revision, status.recognised, status.agreement_id) == (4, True, "CN-NZ")
    assert status.message_id == queued.message_id
    text = await cli(capsys, cn, "lookup", "--aeo", AEO_ID)
    assert "NOT RECOGNISED: status-suspended (agreement CN-NZ): the issuing administration" in text
    # as of a day before anything arrived: nothing was known
    nothing = await lookup(cn, aeo_id=AEO_ID, as_of=(today - timedelta(days=1)).isoformat())
    assert list(nothing.statuses) == [] and not nothing.recognised


async def test_without_agreements_nothing_is_recognised_and_a_batch_answers_in_order(
    federation: Federation,
) -> None:
    """SG has no [agreements]: NZ's status reaches it as before agreements existed, and its
    lookups say no-agreement."""
    sg = await federation.start("SG")
    nz = await federation.start("NZ")
    await submit(nz, spb.SubmitRequest(aeo_status=sample_aeo_status(), recipients=["SG"]))
    answer = await arrived(sg, 4)
    [status] = answer.statuses
    assert (status.recognised, status.reason, status.agreement_id) == (False, "no-agreement", "")
    assert "no agreement" in status.reason_text
    today = datetime.now(UTC).date().isoformat()
    queries = [
        rpb.OperatorQuery(tin=TIN),
        rpb.OperatorQuery(aeo_id="NZAEO-UNKNOWN"),
        rpb.OperatorQuery(aeo_id=AEO_ID, as_of="2020-01-01"),
        rpb.OperatorQuery(aeo_id=AEO_ID, as_of=today),
    ]
    answers = await lookup_batch(sg, queries)
    assert [a.query for a in answers] == queries
    assert [len(a.statuses) for a in answers] == [1, 0, 0, 1]
    assert [a.as_of for a in answers] == [today, today, "2020-01-01", today]
    assert answers[0].statuses[0].aeo_id == AEO_ID and answers[3].statuses == answers[0].statuses


async def subscribed(hub: RunningHub, count: int) -> list[spb.InboundMessage]:
    """The first ``count`` messages a fresh subscriber of ``hub`` reads."""
    got: list[spb.InboundMessage] = []
    async with grpc.aio.insecure_channel(hub.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="risk-engine"), timeout=WAIT
        )
        async for message in stream:
            got.append(message)
            if len(got) == count:
                break
        stream.cancel()
    return got


async def test_a_partners_control_is_found_by_container_and_annotates_a_declaration(
    federation: Federation, capsys: pytest.CaptureFixture[str]
) -> None:
    with_agreements(federation)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    sg = await federation.start("SG")
    [control] = await submit(
        sg, spb.SubmitRequest(control_result=sample_control_result(), recipients=["CN"])
    )
    await submit(nz, spb.SubmitRequest(aeo_status=sample_aeo_status(), recipients=["CN"]))
    await arrived(cn, 4)

    async def controlled() -> rpb.LookupControlsResponse | None:
        found = await controls(cn, container="MSKU7081234")
        return found if found.controls else None

    found = await eventually(controlled)
    [match] = found.controls
    assert (match.party, match.control_id, match.outcome, match.stage) == (
        "SG",
        "SG-INSP-2026-11-00191",
        "no-findings",
        "unspecified",
    )
    assert (match.matched_by, match.matched_value, match.control_type) == (
        "container",
        "MSKU7081234",
        "physical",
    )
    assert (match.recognised, match.agreement_id) == (True, "CN-SG")
    assert match.message_id == control.message_id
    assert match.trail_index == await received_leaf(cn, control.message_id)
    by_lrn = await controls(cn, lrn="CN2026LRN000417")
    assert [c.control_id for c in by_lrn.controls] == [match.control_id]
    assert (await controls(cn, mrn="NO-SUCH-MRN")).controls == []
    text = await cli(capsys, cn, "controls", "--container", "MSKU7081234")
    assert (
        "SG: control SG-INSP-2026-11-00191 (physical, stage unspecified), outcome no-findings"
        in text
    )
    assert "RECOGNISED under CN-SG" in text
    as_json = json.loads(await cli(capsys, cn, "controls", "--lrn", "CN2026LRN000417", "--json"))
    assert as_json["controls"][0]["matched_by"] == "lrn"
    assert "no partner has sent a control result naming it" in await cli(
        capsys, cn, "controls", "--transport-document", "BL-NONE"
    )

    [declaration] = await submit(
        nz, spb.SubmitRequest(goods_declaration=sample_import_declaration(), recipients=["CN"])
    )
    messages = await subscribed(cn, 3)
    assert [m.message_id for m in messages][-1] == declaration.message_id
    # only a declaration is annotated
    assert [m.HasField("recognition") for m in messages] == [False, False, True]
    annotation = messages[-1].recognition
    assert annotation.as_of == datetime.now(UTC).date().isoformat() and not annotation.truncated
    parties = {(p.role, p.id): p for p in annotation.parties}
    assert set(parties) == {("aeo-party", AEO_ID), ("exporter", TIN)}
    aeo_party = parties[("aeo-party", AEO_ID)]
    assert aeo_party.role_code == "MF" and aeo_party.recognised
    [status] = aeo_party.statuses
    assert (status.party, status.agreement_id, status.revision) == ("NZ", "CN-NZ", 4)
    assert [b.code for b in status.benefits] == CN_NZ_BENEFITS
    # the exporter named by TIN is the same operator
    assert parties[("exporter", TIN)].statuses == aeo_party.statuses
    [seen] = annotation.controls
    assert (seen.party, seen.matched_by, seen.matched_value, seen.outcome, seen.recognised) == (
        "SG",
        "container",
        "MSKU7081234",
        "no-findings",
        True,
    )


BAD_QUERIES = [
    ("no key", rpb.OperatorQuery(), "lookup-invalid"),
    ("empty id", rpb.OperatorQuery(aeo_id=""), "lookup-invalid"),
    ("blank id", rpb.OperatorQuery(tin="   "), "lookup-invalid"),
    ("too long", rpb.OperatorQuery(aeo_id="A" * 129), "lookup-invalid"),
    ("control character", rpb.OperatorQuery(aeo_id="NZ\x00AEO"), "lookup-invalid"),
    ("not a date", rpb.OperatorQuery(aeo_id=AEO_ID, as_of="01/06/2026"), "lookup-invalid"),
    ("no such day", rpb.OperatorQuery(aeo_id=AEO_ID, as_of="2026-02-30"), "lookup-invalid"),
]


def reason_of(error: grpc.aio.AioRpcError) -> str:
    return str(dict(error.trailing_metadata() or ())[REASON_KEY])


async def test_bad_lookups_are_refused_with_their_reason_and_the_service_goes_on(
    federation: Federation,
) -> None:
    with_agreements(federation)
    cn = await federation.start("CN")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = rgrpc.RecognitionStub(channel)
        for name, query, reason in BAD_QUERIES:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.LookupOperator(query, timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, name
            assert reason_of(info.value) == reason, name
            details = info.value.details() or ""
            assert details and "AAAAAAAA" not in details, name  # what was sent is not echoed
        # a batch: too many, none, one bad among good ones (named by its place)
        good = rpb.OperatorQuery(aeo_id=AEO_ID)
        for queries, reason, says in [
            ([good] * (MAX_QUERIES + 1), "lookup-too-large", "at most 1000"),
            ([], "lookup-invalid", "no query"),
            ([good, good, rpb.OperatorQuery(tin="x" * 200)], "lookup-invalid", "query 2:"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.LookupOperators(rpb.LookupOperatorsRequest(queries=queries), timeout=10)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert reason_of(info.value) == reason and says in (info.value.details() or "")
        for asked in [rpb.ControlsQuery(), rpb.ControlsQuery(container="C" * 129)]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.LookupControls(asked, timeout=10)
            assert reason_of(info.value) == "lookup-invalid"
        # a request that is not the method's message at all
        raw = channel.unary_unary("/customs_hub.v1.Recognition/LookupOperator")
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await raw(b"\xff\xff\xff", timeout=10)
        assert reason_of(info.value) == "request-malformed"
        # and the service still answers
        answer = await stub.LookupOperator(rpb.OperatorQuery(aeo_id=AEO_ID, as_of="2026-01-01"))
        assert answer.as_of == "2026-01-01" and list(answer.statuses) == []
    # refusals are in the trail, once a minute per reason: nobody grows it by asking
    refusals = await cn.hub.store.views.rejections("recognition")
    assert sorted(r.reason for r in refusals) == ["lookup-invalid", "lookup-too-large"]


async def test_a_declaration_naming_one_tin_under_many_roles_is_annotated_bounded_and_fast(
    federation: Federation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: 1,000 statuses sharing one TIN, and a declaration naming that TIN as AEO
    party under 1,000 role codes (10^6 statuses unbounded). The annotation is cut to bounded
    size (truncated set), handed on at once, and the next message follows."""
    with_agreements(federation)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    shared = "NZ-SHARED-TIN"
    many = [
        incoming(status(f"NZAEO{i:05d}", 1, tin=shared), "NZ", f"flood-{i}", datetime.now(UTC))
        for i in range(1000)
    ]
    await cn.hub.store.inbound.accept(many, signer)
    flooded = await cn.hub.store.inbound.after(0, 2000)
    declaration = sample_import_declaration()
    shipment = declaration.goods_shipment
    del shipment.aeo_mutual_recognition_party[:]
    for i in range(1000):
        shipment.aeo_mutual_recognition_party.add(id=shared, role_code=f"R{i}")
    [sent] = await submit(nz, spb.SubmitRequest(goods_declaration=declaration, recipients=["CN"]))
    [after] = await submit(
        nz, spb.SubmitRequest(goods_declaration=sample_import_declaration(), recipients=["CN"])
    )

    # straight through the lookups: a sanity bound, not a benchmark
    started = time.monotonic()
    annotation = await lookups_of(cn.hub).annotate(declaration)
    assert time.monotonic() - started < 2
    assert annotation.truncated and annotation.ByteSize() < 1_000_000
    assert len(annotation.parties) == 1000 and all(p.recognised for p in annotation.parties)
    listed = [len(p.statuses) for p in annotation.parties]
    assert listed[:10] == [MAX_STATUSES] * 10 and listed[10:] == [0] * 990
    assert sum(listed) == MAX_ANNOTATION_STATUSES

    # as a subscriber reads it, and the next message after it
    started = time.monotonic()
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="risk-engine", after_cursor=flooded[-1].id),
            timeout=WAIT,
        )
        got = []
        async for message in stream:
            got.append(message)
            if len(got) == 2:
                break
        stream.cancel()
    assert time.monotonic() - started < 10
    assert [m.message_id for m in got] == [sent.message_id, after.message_id]
    assert got[0].recognition.truncated and not got[0].recognition_omitted
    assert got[0].ByteSize() < 1_000_000
    assert got[1].HasField("recognition") and not got[1].recognition.truncated

    # an annotation larger than the hub hands on is left out, and the stream goes on
    monkeypatch.setattr(domestic, "MAX_ANNOTATION_BYTES", got[0].recognition.ByteSize() - 1)
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="another", after_cursor=flooded[-1].id),
            timeout=WAIT,
        )
        again = []
        async for message in stream:
            again.append(message)
            if len(again) == 2:
                break
        stream.cancel()
    assert [m.message_id for m in again] == [sent.message_id, after.message_id]
    assert not again[0].HasField("recognition") and again[0].recognition_omitted
    assert again[0].body == got[0].body
    assert again[1].recognition == got[1].recognition and not again[1].recognition_omitted

    # a lookup of the TIN lists at most MAX_STATUSES, and says so
    answer = await lookup(cn, tin=shared)
    assert len(answer.statuses) == MAX_STATUSES and answer.truncated and answer.recognised
    assert not (await lookup(cn, aeo_id="NZAEO00007")).truncated

    # a container named by more control results than an answer lists
    results = []
    for i in range(MAX_CONTROLS + 5):
        result = sample_control_result()
        result.declaration_id = f"SGMRN{i:04d}"
        result.control_id = f"SG-INSP-{i:04d}"  # each its own control, so each stays current
        results.append(incoming(result, "SG", f"control-{i}", datetime.now(UTC)))
    await cn.hub.store.inbound.accept(results, signer)
    found = await controls(cn, container="MSKU7081234")
    assert len(found.controls) == MAX_CONTROLS and found.truncated
    assert not (await controls(cn, mrn="SGMRN0003")).truncated
    annotated = await lookups_of(cn.hub).annotate(sample_import_declaration())
    assert len(annotated.controls) == MAX_CONTROLS and annotated.truncated
