"""Agreements' sharing policy between real hubs (issue 18): what leaves is only what the
agreement covering it allows, and the queued leaf names the agreement and its digest; a
domestic submission no agreement covers is refused before anything is signed or queued; a
partner's envelope no agreement covers gets a signed REJECTED receipt and nothing is stored,
while its other messages are taken; a reload puts new agreements in place (a config-changed
leaf) and the new policy applies to the next message; without [agreements], all is as before."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from hub.cli.demo import sample_aeo_status, sample_control_result, sample_declaration
from hub.config import load_config
from hub.core.envelope import verify_receipt
from hub.core.errors import REASON_KEY
from hub.core.messages import AeoStatus, ControlResult
from hub.pb.customs_hub.v1 import control_pb2
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from hub.trail import events as trail
from tests.adversarial.conditions import aeo_envelope, refused_with
from tests.conftest import Federation
from tests.test_delivery import cli
from tests.test_exchange import as_partner, eventually, nz_signing_key, signed_envelope, submit
from tests.testdata import CDS_SAMPLES

REASON = "not-covered-by-agreement"

CN_AGREEMENTS = """
[agreements.CN-NZ]
partners = ["NZ"]
status = "in-force"
effective_from = "2020-01-01"
recognises = { security-safety = "security-safety" }
benefits = ["reduced-inspections"]

[agreements.CN-NZ.share.AeoStatus]
send = true
receive = true
fields = ["issuing_administration", "aeo_id", "tin", "programme", "status", "valid_from",
          "valid_to", "revision", "country_code"]

[agreements.CN-NZ.share.ControlResult]
send = true
fields = ["control_id", "functional_reference_id", "container_ids", "outcome", "revision",
          "evidence.sha256"]
"""

# NZ takes AEO statuses from CN and SG, and nothing else from anyone
NZ_AGREEMENTS = """
[agreements.NZ-CN-SG]
partners = ["CN", "SG"]
effective_from = "2020-01-01"

[agreements.NZ-CN-SG.share.AeoStatus]
receive = true
"""


def configure(fed: Federation, party: str, text: str) -> None:
    path = fed.configs[party].path
    path.write_text(path.read_text() + text)
    fed.configs[party] = load_config(path)


async def leaves(hub: RunningHub, kind: str) -> list[trail.tpb.TrailEvent]:
    events = [trail.decode(leaf) for leaf in await hub.hub.store.trail.leaves()]
    return [e for e in events if e.kind == kind]


async def received_by(hub: RunningHub, count: int) -> list[object]:
    async def enough() -> list[object] | None:
        rows = await hub.hub.store.views.inbound()
        return rows if len(rows) >= count else None

    return await eventually(enough)  # type: ignore[no-any-return]


async def refused_submission(hub: RunningHub, request: spb.SubmitRequest) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await submit(hub, request)
    return info.value


def full_aeo() -> AeoStatus:
    status = sample_aeo_status("CN", "CNAEO1")
    status.reason = "kept at home"
    return status


def full_control() -> ControlResult:
    result = sample_control_result()
    result.officer_id = "officer-7"
    result.evidence.add(media_type="image/jpeg", sha256=b"\x07" * 32, description="photo")
    return result


async def test_the_partner_receives_only_what_the_policy_allows(federation: Federation) -> None:
    configure(federation, "CN", CN_AGREEMENTS)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")  # no agreements: takes everything, as before
    agreement = cn.config.agreements.items["CN-NZ"]
    [aeo] = await submit(cn, spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ"]))
    [control] = await submit(
        cn, spb.SubmitRequest(control_result=full_control(), recipients=["NZ"])
    )
    rows = {r.message_id: r for r in await received_by(nz, 2)}  # type: ignore[attr-defined]
    got = AeoStatus.FromString(rows[aeo.message_id].body)
    assert got.aeo_id == "CNAEO1" and got.tin == full_aeo().tin and got.revision == 4
    assert got.name == "" and got.reason == ""  # not in the policy's fields
    result = ControlResult.FromString(rows[control.message_id].body)
    assert result.control_id == full_control().control_id
    assert result.outcome == control_pb2.CONTROL_OUTCOME_NO_FINDINGS
    assert [e.sha256 for e in result.evidence] == [b"\x07" * 32]
    assert result.evidence[0].description == "" and result.officer_id == ""
    assert not result.seals_applied and result.office_id == ""
    # the queued leaves name the agreement and the policy version applied
    queued = {e.message_id: e for e in await leaves(cn, "queued")}
    for message_id in (aeo.message_id, control.message_id):
        assert queued[message_id].agreement == "CN-NZ"
        assert queued[message_id].policy_digest == agreement.digest


async def test_a_submission_no_agreement_covers_is_refused_and_nothing_queued(
    federation: Federation,
) -> None:
    configure(federation, "CN", CN_AGREEMENTS)
    cn = await federation.start("CN")
    cases = [
        # GoodsDeclaration is in no agreement of CN's
        spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"]),
        # SG is in none: the whole submission is refused, NZ gets nothing either
        spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ", "SG"]),
    ]
    for request in cases:
        error = await refused_submission(cn, request)
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert dict(error.trailing_metadata() or ())[REASON_KEY] == REASON
    assert "go to SG" in error.details()  # type: ignore[operator]
    assert await cn.hub.store.views.outbound() == []
    assert await cn.hub.store.views.outbox() == []
    assert [r.reason for r in await cn.hub.store.views.rejections()] == [REASON, REASON]
    assert await leaves(cn, "queued") == []
    # what an agreement covers still goes
    [queued] = await submit(cn, spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ"]))
    assert queued.recipient == "NZ"


async def test_a_partners_envelope_no_agreement_covers_gets_a_signed_rejected_receipt(
    federation: Federation, pki: Path
) -> None:
    configure(federation, "NZ", NZ_AGREEMENTS)
    nz = await federation.start("NZ")
    declaration, _ = signed_envelope(pki)  # CN -> NZ, a declaration: not covered
    # status, reason, signed REJECTED receipt, nothing stored or handed over, recorded once,
    # SG still served
    await refused_with(pki, nz, declaration, grpc.StatusCode.FAILED_PRECONDITION, REASON)
    # CN's other messages, covered, are taken on the same stream as one refused
    control, _ = signed_envelope(pki, document=sample_control_result())
    client = as_partner(pki, "CN", nz)
    try:
        receipts = await client.exchange(
            "NZ", [aeo_envelope(pki, "CN", "CNAEO9"), control], timeout=5
        )
    finally:
        await client.close()
    outcomes = [verify_receipt(r, "NZ", nz_signing_key(pki)) for r in receipts]
    assert [o.outcome for o in outcomes] == [
        pb.RECEIPT_OUTCOME_ACCEPTED,
        pb.RECEIPT_OUTCOME_REJECTED,
    ]
    assert outcomes[1].reason == REASON
    assert sorted(m.sender for m in await nz.hub.store.views.inbound()) == ["CN", "SG"]
    rejected = await leaves(nz, "rejected")
    assert [e.reason for e in rejected] == [REASON, REASON]


async def test_a_reload_puts_new_agreements_in_place(federation: Federation) -> None:
    configure(federation, "CN", CN_AGREEMENTS)
    cn = await federation.start("CN")
    await federation.start("NZ")
    before = cn.config.agreements.items["CN-NZ"].digest
    path = cn.config.path
    # the operator now lets the name go too, and ControlResult no more
    new = CN_AGREEMENTS.replace('"tin", "programme"', '"tin", "name", "programme"')
    new = new[: new.index("[agreements.CN-NZ.share.ControlResult]")]
    path.write_text(path.read_text().replace(CN_AGREEMENTS, new))
    change = await cn.reload()
    assert change.agreements and change.recorded
    after = cn.hub.agreements.items["CN-NZ"]
    assert after.digest != before and "customs_hub.v1.ControlResult" not in after.shares
    assert (await leaves(cn, "config-changed"))[-1].detail.startswith("reloaded")
    [aeo] = await submit(cn, spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ"]))
    [queued] = [e for e in await leaves(cn, "queued") if e.message_id == aeo.message_id]
    assert queued.policy_digest == after.digest
    nz = federation.running["NZ"]
    [row] = await received_by(nz, 1)
    assert AeoStatus.FromString(row.body).name == full_aeo().name  # type: ignore[attr-defined]
    error = await refused_submission(
        cn, spb.SubmitRequest(control_result=full_control(), recipients=["NZ"])
    )
    assert dict(error.trailing_metadata() or ())[REASON_KEY] == REASON


async def test_without_agreements_everything_goes_whole_as_before(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    assert not cn.hub.agreements.configured
    [aeo] = await submit(cn, spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ"]))
    [row] = await received_by(nz, 1)
    assert AeoStatus.FromString(row.body) == full_aeo()  # type: ignore[attr-defined]
    [queued] = await leaves(cn, "queued")
    assert queued.message_id == aeo.message_id
    assert queued.agreement == "" and queued.policy_digest == ""


CN_TWO_AGREEMENTS = """
[agreements.CN-NZ-AEO]
partners = ["NZ"]
effective_from = "2020-01-01"

[agreements.CN-NZ-AEO.share.AeoStatus]
send = true

[agreements.CN-NZ-AEO.share.GoodsDeclaration]
send = true

[agreements.CN-NZ-CTRL]
partners = ["NZ"]
effective_from = "2020-01-01"

[agreements.CN-NZ-CTRL.share.ControlResult]
send = true
"""

# NZ takes only responses from CN: what CN sends it is finally rejected, a dead letter at CN
NZ_ONLY_RESPONSES = """
[agreements.NZ-CN]
partners = ["CN"]
effective_from = "2020-01-01"

[agreements.NZ-CN.share.Response]
receive = true
"""


async def test_outbox_retry_keeps_dead_letters_todays_agreements_do_not_cover(
    federation: Federation,
) -> None:
    configure(federation, "CN", CN_TWO_AGREEMENTS)
    configure(federation, "NZ", NZ_ONLY_RESPONSES)
    cn = await federation.start("CN")
    await federation.start("NZ")
    [aeo] = await submit(cn, spb.SubmitRequest(aeo_status=full_aeo(), recipients=["NZ"]))
    [control] = await submit(
        cn, spb.SubmitRequest(control_result=full_control(), recipients=["NZ"])
    )
    [declaration] = await submit(
        cn, spb.SubmitRequest(goods_declaration=sample_declaration(), recipients=["NZ"])
    )
    letters = [aeo.message_id, control.message_id, declaration.message_id]

    async def all_dead() -> bool:
        dead = await cn.hub.store.outbox.dead_letters(partner="NZ")
        return sorted(m.message_id for m in dead) == sorted(letters)

    await eventually(all_dead)  # rejected by NZ, their envelopes still valid for a week
    # the operator ends CN's sharing of AEO statuses with NZ; declarations still go, under
    # a changed policy (so a changed digest); control results under the same one
    path = cn.config.path
    narrowed = CN_TWO_AGREEMENTS.replace(
        "[agreements.CN-NZ-AEO.share.AeoStatus]\nsend = true\n\n", ""
    )
    assert narrowed != CN_TWO_AGREEMENTS
    path.write_text(path.read_text().replace(CN_TWO_AGREEMENTS, narrowed))
    change = await cn.reload()
    assert change.agreements and change.recorded
    digest = cn.hub.agreements.items["CN-NZ-AEO"].digest
    await federation.stop("CN")
    retried = cli("outbox", "retry", "--config", str(path), "--partner", "NZ")
    assert retried.returncode == 0, retried.stderr
    lines = retried.stdout.splitlines()
    assert f"requeued {control.message_id}" in lines  # signed under today's policy
    [resigned] = [line for line in lines if line.startswith(f"re-signed {declaration.message_id}")]
    assert aeo.message_id not in retried.stdout
    assert f"kept {aeo.message_id} as a dead letter: no agreement in effect on" in retried.stderr
    assert "lets AeoStatus go to NZ" in retried.stderr
    cn = await federation.start("CN")
    dead = await cn.hub.store.outbox.dead_letters(partner="NZ")
    assert aeo.message_id in [m.message_id for m in dead]  # still a dead letter
    rejected = [e for e in await leaves(cn, "rejected") if e.message_id == aeo.message_id]
    assert [(e.sender, e.reason) for e in rejected] == [("outbox-retry", REASON)]
    requeued = {e.message_id: e.detail for e in await leaves(cn, "requeued")}
    assert aeo.message_id not in requeued
    assert requeued[control.message_id] == "an operator put it back in the queue"
    new_id = resigned.split()[-1]
    assert requeued[declaration.message_id] == f"an operator re-signed it as {new_id}"
    [queued] = [e for e in await leaves(cn, "queued") if e.message_id == new_id]
    assert queued.agreement == "CN-NZ-AEO"
    assert queued.policy_digest == digest
    # a retry of the kept letter alone is refused, naming why, and queues nothing
    again = cli("outbox", "retry", "--config", str(path), "--message-id", aeo.message_id)
    assert again.returncode == 2 and "lets AeoStatus go to NZ" in again.stderr


CN_RESPONSES_ONLY = """
[agreements.CN-NZ-RES]
partners = ["NZ"]
effective_from = "2020-01-01"

[agreements.CN-NZ-RES.share.Response]
send = true
"""


async def test_a_derived_message_no_agreement_covers_is_left_out(
    federation: Federation,
) -> None:
    configure(federation, "CN", CN_RESPONSES_ONLY)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")  # no agreements: would take the control result too
    notification = CDS_SAMPLES / "TT_IM068a/Example_Notifications/07_DMSCLE.xml"
    raw = spb.RawDocument(format="wco-xml", content=notification.read_bytes())
    queued = await submit(cn, spb.SubmitRequest(raw=raw, recipients=["NZ"]))
    # the notification goes; the control result it implies is covered by no agreement
    assert [q.recipient for q in queued] == ["NZ"]
    [row] = await received_by(nz, 1)
    assert row.body_type == "customs_hub.v1.Response"  # type: ignore[attr-defined]
    assert [m.body_type for m, _ in await cn.hub.store.views.outbound()] == [
        "customs_hub.v1.Response"
    ]
    routed = {e.body_type: e.detail for e in await leaves(cn, "routed")}
    assert routed["customs_hub.v1.ControlResult"].startswith("to nobody")
    assert "not to NZ, which no agreement lets it go to" in routed["customs_hub.v1.ControlResult"]
    assert routed["customs_hub.v1.Response"] == "to NZ, as the domestic system asked"
