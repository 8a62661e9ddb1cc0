"""Agreements and the sharing policy's pure core (hub/core/agreements.py): which agreement
covers a message, the field filter, and the checks config runs at load."""

from __future__ import annotations

import datetime

import pytest

from hub.core.agreements import (
    BENEFITS,
    Share,
    agreement,
    agreements,
    conflicts,
    field_problems,
    keep_fields,
)
from hub.core.messages import AEO_PROGRAMMES, AeoStatus, ControlResult, GoodsDeclaration
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2

AEO, CONTROL = AeoStatus.DESCRIPTOR.full_name, ControlResult.DESCRIPTOR.full_name
D = datetime.date


def nz(**kw: object) -> object:
    base: dict[str, object] = {
        "effective_from": D(2025, 1, 1),
        "shares": [Share(AEO, send=True, receive=True, fields=("aeo_id", "tin"))],
    }
    base.update(kw)
    return agreement("CN-NZ", ["NZ"], **base)  # type: ignore[arg-type]


def test_benefits_are_a_closed_list_of_codes_with_a_sentence() -> None:
    for code in (
        "reduced-inspections",
        "priority-treatment",
        "control-results",
        "reduced-data",
        "business-continuity",
        "simplified-procedures",
        "joint-validation",
    ):
        assert BENEFITS[code].strip()
    assert all(code == code.lower() and " " not in code for code in BENEFITS)


def test_in_effect_is_inclusive_of_both_days_and_open_ended_without_an_end() -> None:
    a = agreement("A", ["NZ"], effective_from=D(2025, 1, 1), effective_until=D(2025, 12, 31))
    assert not a.in_effect(D(2024, 12, 31))
    assert a.in_effect(D(2025, 1, 1)) and a.in_effect(D(2025, 12, 31))
    assert not a.in_effect(D(2026, 1, 1))
    b = agreement("B", ["NZ"], effective_from=D(2025, 1, 1))
    assert b.in_effect(D(9999, 12, 31))


def test_covering_names_the_agreement_for_partner_type_direction_and_day() -> None:
    a = agreement(
        "CN-NZ",
        ["NZ", "AU"],
        effective_from=D(2025, 1, 1),
        effective_until=D(2025, 6, 30),
        shares=[Share(AEO, send=True, receive=False), Share(CONTROL, send=False, receive=True)],
    )
    s = agreements([a])
    day = D(2025, 3, 1)
    assert s.configured
    assert s.covering("NZ", AEO, "send", day) is a
    assert s.covering("AU", AEO, "send", day) is a
    assert s.covering("NZ", AEO, "receive", day) is None
    assert s.covering("NZ", CONTROL, "receive", day) is a
    assert s.covering("NZ", CONTROL, "send", day) is None
    assert s.covering("SG", AEO, "send", day) is None
    assert s.covering("NZ", AEO, "send", D(2025, 7, 1)) is None
    assert s.covering("NZ", GoodsDeclaration.DESCRIPTOR.full_name, "send", day) is None
    with pytest.raises(ValueError):
        s.covering("NZ", AEO, "sideways", day)


def test_a_suspended_agreement_still_covers_exchange() -> None:
    a = nz(status="suspended")
    assert agreements([a]).covering("NZ", AEO, "send", D(2025, 2, 1)) is a


def test_of_partner_lists_earliest_first_and_nothing_configured_is_empty() -> None:
    old = agreement("OLD", ["NZ"], effective_from=D(2020, 1, 1), effective_until=D(2024, 12, 31))
    new = agreement("NEW", ["NZ", "SG"], effective_from=D(2025, 1, 1))
    s = agreements([new, old])
    assert [a.id for a in s.of_partner("NZ")] == ["OLD", "NEW"]
    assert [a.id for a in s.of_partner("SG")] == ["NEW"]
    assert s.of_partner("AU") == []
    none = agreements([])
    assert not none.configured and none.digest == "" and none.of_partner("NZ") == []


def test_digest_changes_with_any_deciding_value_and_not_with_order() -> None:
    a = nz()
    assert len(a.digest) == 64 and a.digest == nz().digest
    assert nz(status="suspended").digest != a.digest
    assert nz(effective_until=D(2026, 1, 1)).digest != a.digest
    assert nz(benefits=["reduced-inspections"]).digest != a.digest
    assert nz(recognises={"full": "full"}).digest != a.digest
    assert nz(shares=[Share(AEO, send=True, receive=True, fields=("aeo_id",))]).digest != a.digest
    b = agreement("X", ["NZ", "SG"], effective_from=D(2025, 1, 1), benefits=["a", "b"])
    c = agreement("X", ["SG", "NZ"], effective_from=D(2025, 1, 1), benefits=["b", "a"])
    assert b.digest == c.digest
    both = agreements([a, b])
    assert both.digest == agreements([b, a]).digest
    assert both.digest != agreements([a]).digest != ""
    assert agreements([nz(status="suspended"), b]).digest != both.digest


def test_conflicts_same_partner_programme_on_overlapping_dates() -> None:
    a = agreement(
        "A",
        ["NZ"],
        effective_from=D(2025, 1, 1),
        effective_until=D(2025, 12, 31),
        recognises={"full": "full"},
    )
    b = agreement("B", ["NZ", "SG"], effective_from=D(2025, 12, 31), recognises={"full": "full"})
    found = conflicts([a, b])
    assert len(found) == 1 and found[0][0] == "B" and "'full'" in found[0][1]
    later = agreement("B", ["NZ"], effective_from=D(2026, 1, 1), recognises={"full": "full"})
    assert conflicts([a, later]) == []
    other = agreement("B", ["SG"], effective_from=D(2025, 1, 1), recognises={"full": "full"})
    assert conflicts([a, other]) == []
    programme = agreement(
        "B", ["NZ"], effective_from=D(2025, 1, 1), recognises={"security-safety": "full"}
    )
    assert conflicts([a, programme]) == []


def test_conflicts_same_type_partner_and_direction_on_overlapping_dates() -> None:
    a = agreement("A", ["NZ"], effective_from=D(2025, 1, 1), shares=[Share(AEO, True, False)])
    b = agreement("B", ["NZ"], effective_from=D(2030, 1, 1), shares=[Share(AEO, True, True)])
    found = conflicts([a, b])
    assert found == [
        ("B", "share.AeoStatus: send with NZ on dates agreement A also covers; their dates "
         "must not overlap")
    ]  # fmt: skip
    receive_only = agreement(
        "B", ["NZ"], effective_from=D(2025, 1, 1), shares=[Share(AEO, False, True)]
    )
    assert conflicts([a, receive_only]) == []


def test_field_problems_names_each_unknown_path() -> None:
    assert field_problems(AeoStatus, ["aeo_id", "tin"]) == []
    assert field_problems(ControlResult, ["evidence.sha256", "findings"]) == []
    deep = "goods_shipment.consignment.transport_equipment.id"
    assert field_problems(GoodsDeclaration, [deep]) == []
    assert (
        field_problems(GoodsDeclaration, ["goods_shipment.consignment.transport_equipment"]) == []
    )
    problems = field_problems(AeoStatus, ["aeo_id", "nmae", "aeo_id.x", "", "tin."])
    assert len(problems) == 4
    assert "AeoStatus has no field 'nmae'" in problems[0]
    assert "aeo_id is not a message" in problems[1]
    assert "evidence has no field 'sha512'" in field_problems(ControlResult, ["evidence.sha512"])[0]


def control() -> control_pb2.ControlResult:
    return control_pb2.ControlResult(
        control_id="C1",
        declaration_id="MRN1",
        container_ids=["MSCU1", "MSCU2"],
        control_type=control_pb2.CONTROL_TYPE_PHYSICAL,
        findings=[control_pb2.Finding(code="F1", description="d")],
        officer_id="officer-7",
        evidence=[
            control_pb2.Evidence(media_type="image/jpeg", sha256=b"\x01" * 32, description="x"),
            control_pb2.Evidence(media_type="image/png", sha256=b"\x02" * 32),
        ],
        revision=3,
    )


def test_keep_fields_keeps_only_the_listed_fields_and_paths() -> None:
    doc = control()
    kept = keep_fields(doc, ["control_id", "container_ids", "findings", "evidence.sha256"])
    assert isinstance(kept, ControlResult)
    assert kept.control_id == "C1" and list(kept.container_ids) == ["MSCU1", "MSCU2"]
    assert kept.findings[0].code == "F1" and kept.findings[0].description == "d"
    assert [e.sha256 for e in kept.evidence] == [b"\x01" * 32, b"\x02" * 32]
    assert all(e.media_type == "" and e.description == "" for e in kept.evidence)
    assert kept.officer_id == "" and kept.declaration_id == "" and kept.revision == 0
    assert doc.officer_id == "officer-7"  # the original is untouched
    assert keep_fields(doc, []) == doc and keep_fields(doc, []) is not doc


def test_keep_fields_into_singular_messages_and_whole_ancestors_win() -> None:
    d = GoodsDeclaration(id="MRN", functional_reference_id="LRN")
    d.goods_shipment.ucr.id = "UCR1"
    d.goods_shipment.destination.country_code = "NZ"
    kept = keep_fields(d, ["goods_shipment.ucr", "id"])
    assert kept.id == "MRN" and kept.functional_reference_id == ""
    assert kept.goods_shipment.ucr.id == "UCR1"
    assert not kept.goods_shipment.HasField("destination")
    whole = keep_fields(d, ["goods_shipment.ucr.id", "goods_shipment"])
    assert whole.goods_shipment == d.goods_shipment
    absent = keep_fields(GoodsDeclaration(id="x"), ["goods_shipment.ucr"])
    assert not absent.HasField("goods_shipment")


def test_keep_fields_refuses_a_path_the_message_lacks() -> None:
    with pytest.raises(ValueError):
        keep_fields(control(), ["nothing"])
    with pytest.raises(ValueError):
        keep_fields(control(), ["officer_id.x"])


def test_keep_fields_of_an_aeo_status_without_the_reason() -> None:
    status = aeo_pb2.AeoStatus(
        issuing_administration="NZ",
        aeo_id="NZAEO1",
        programme=aeo_pb2.AEO_PROGRAMME_FULL,
        status=aeo_pb2.AEO_STANDING_SUSPENDED,
        reason="under investigation",
    )
    fields = [f.name for f in AeoStatus.DESCRIPTOR.fields if f.name != "reason"]
    kept = keep_fields(status, fields)
    assert kept.reason == "" and kept.aeo_id == "NZAEO1"
    assert AEO_PROGRAMMES[kept.programme] == "full"


def test_require_is_no_policy_without_agreements_and_refuses_what_none_covers() -> None:
    from hub.core.errors import AgreementError, Status

    assert agreements([]).require("NZ", AEO, "send", D(2025, 1, 1)) is None
    a = nz()
    assert agreements([a]).require("NZ", AEO, "send", D(2025, 1, 1)) is a
    with pytest.raises(AgreementError) as refused:
        agreements([a]).require("SG", AEO, "receive", D(2025, 1, 1))
    assert refused.value.reason == "not-covered-by-agreement"
    assert refused.value.status == Status.FAILED_PRECONDITION
    assert "AeoStatus come from SG" in refused.value.message


def test_identity_problems_name_what_a_partner_needs_to_accept_the_message() -> None:
    from hub.core.agreements import identity_problems

    assert identity_problems(AEO, []) == []
    assert identity_problems(AEO, ["issuing_administration", "aeo_id", "revision"]) == []
    assert identity_problems(AEO, ["aeo_id", "revision"]) == [
        "must keep issuing_administration: a partner cannot accept the message without it"
    ]
    assert identity_problems(CONTROL, ["control_id", "revision", "container_ids"]) == []
    [problem] = identity_problems(CONTROL, ["control_id", "revision"])
    assert "declaration_id or functional_reference_id or container_ids" in problem
    declaration = GoodsDeclaration.DESCRIPTOR.full_name
    assert identity_problems(declaration, ["goods_shipment"]) != []
    assert identity_problems(declaration, ["id", "goods_shipment.ucr"]) == []
