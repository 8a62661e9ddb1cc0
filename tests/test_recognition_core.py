"""The recognition verdict and what a declaration names (hub/core/recognition.py): a scenario
table of statuses against agreements, the order of the reasons, and real CDS declarations from
the corpus."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime

import pytest

from adapters.wco.translator import WcoXml
from hub.cli.demo import sample_declaration
from hub.core.agreements import BENEFITS, Agreements, agreement, agreements
from hub.core.messages import MAX_KEY_LENGTH, GoodsDeclaration
from hub.core.recognition import (
    AEO_PARTY,
    CONSIGNOR,
    EXPORTER,
    MAX_LOOKUPS,
    NOT_RECOGNISED,
    NamedParty,
    Verdict,
    declaration_keys,
    recognise,
    recognise_control,
)
from hub.core.registry import AeoRecord, ControlRecord
from tests.testdata import CDS_SAMPLES

DAY = date(2026, 6, 1)
RECEIVED = datetime(2026, 5, 1, tzinfo=UTC)

CN_NZ = agreement(
    "CN-NZ",
    ["NZ"],
    effective_from=date(2025, 1, 1),
    recognises={"security-safety": "security-safety", "full": "full"},
    benefits=["reduced-inspections", "priority-treatment", "control-results"],
)


def status(**changes: object) -> AeoRecord:
    record = AeoRecord(
        party="NZ",
        aeo_id="NZAEO10077",
        tin="NZ9429041234567",
        name="Kiwi Fresh Exports Ltd",
        programme="security-safety",
        status="valid",
        valid_from="2025-03-01",
        valid_to="",
        revision=4,
        country_code="NZ",
        message_id="0190c0de-0000-7000-8000-000000000001",
        trail_index=17,
        received_at=RECEIVED,
        document=b"",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def control(**changes: object) -> ControlRecord:
    record = ControlRecord(
        party="SG",
        key="lrn:CN2026LRN000417",
        control_id="SG-INSP-2026-11-00191",
        declaration_id="",
        functional_reference_id="CN2026LRN000417",
        transport_document_id="",
        container_ids=("MSKU7081234",),
        control_type="physical",
        stage="released",
        outcome="no-findings",
        controlled_at="2026-11-25T03:14:00Z",
        office_id="SGPSA01",
        revision=1,
        message_id="0190c0de-0000-7000-8000-000000000002",
        trail_index=9,
        received_at=RECEIVED,
        document=b"",
    )
    return dataclasses.replace(record, **changes)  # type: ignore[arg-type]


def test_a_valid_status_under_an_agreement_in_force_is_recognised_with_its_benefits() -> None:
    verdict = recognise(status(), agreements([CN_NZ]), DAY)
    assert verdict.recognised and verdict.reason == ""
    assert verdict.agreement == "CN-NZ" and verdict.programme == "security-safety"
    assert [(b.code, b.sentence) for b in verdict.benefits] == [
        (code, BENEFITS[code])
        for code in ("reduced-inspections", "priority-treatment", "control-results")
    ]


# (name, status changes, agreements, day, reason, agreement id, our programme)
SCENARIOS = [
    ("no agreements configured", {}, Agreements(), DAY, "no-agreement", "", ""),
    ("agreements with others only", {"party": "SG"}, [CN_NZ], DAY, "no-agreement", "", ""),
    (
        "an agreement recognising nothing",
        {},
        [dataclasses.replace(CN_NZ, recognises={})],
        DAY,
        "no-agreement",
        "",
        "",
    ),
    ("revoked", {"status": "revoked"}, [CN_NZ], DAY, "status-revoked", "CN-NZ", "security-safety"),
    (
        "suspended",
        {"status": "suspended"},
        [CN_NZ],
        DAY,
        "status-suspended",
        "CN-NZ",
        "security-safety",
    ),
    (
        "no standing",
        {"status": "unspecified"},
        [CN_NZ],
        DAY,
        "status-unclear",
        "CN-NZ",
        "security-safety",
    ),
    (
        "a date that is no date",
        {"valid_to": "2026-13-40"},
        [CN_NZ],
        DAY,
        "status-unclear",
        "CN-NZ",
        "security-safety",
    ),
    (
        "a date in another form",
        {"valid_from": "1/3/2025"},
        [CN_NZ],
        DAY,
        "status-unclear",
        "CN-NZ",
        "security-safety",
    ),
    (
        "valid_to passed",
        {"valid_to": "2026-05-31"},
        [CN_NZ],
        DAY,
        "status-expired",
        "CN-NZ",
        "security-safety",
    ),
    (
        "valid_from to come",
        {"valid_from": "2026-06-02"},
        [CN_NZ],
        DAY,
        "status-expired",
        "CN-NZ",
        "security-safety",
    ),
    (
        "valid_to is the day",
        {"valid_to": "2026-06-01"},
        [CN_NZ],
        DAY,
        "",
        "CN-NZ",
        "security-safety",
    ),
    (
        "valid_from is the day",
        {"valid_from": "2026-06-01"},
        [CN_NZ],
        DAY,
        "",
        "CN-NZ",
        "security-safety",
    ),
    (
        "programme not mapped",
        {"programme": "simplifications"},
        [CN_NZ],
        DAY,
        "programme-not-covered",
        "CN-NZ",
        "",
    ),
    (
        "programme unspecified",
        {"programme": "unspecified"},
        [CN_NZ],
        DAY,
        "programme-not-covered",
        "CN-NZ",
        "",
    ),
    ("full maps to full", {"programme": "full"}, [CN_NZ], DAY, "", "CN-NZ", "full"),
    (
        "agreement not yet in effect",
        {},
        [dataclasses.replace(CN_NZ, effective_from=date(2026, 7, 1))],
        DAY,
        "agreement-not-in-force",
        "CN-NZ",
        "security-safety",
    ),
    (
        "agreement ended the day before",
        {},
        [dataclasses.replace(CN_NZ, effective_until=date(2026, 5, 31))],
        DAY,
        "agreement-not-in-force",
        "CN-NZ",
        "security-safety",
    ),
    (
        "agreement's last day",
        {},
        [dataclasses.replace(CN_NZ, effective_until=DAY)],
        DAY,
        "",
        "CN-NZ",
        "security-safety",
    ),
    (
        "agreement suspended",
        {},
        [dataclasses.replace(CN_NZ, status="suspended")],
        DAY,
        "agreement-suspended",
        "CN-NZ",
        "security-safety",
    ),
]


@pytest.mark.parametrize(
    ("changes", "made", "day", "reason", "agreement_id", "ours"),
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_scenarios(
    changes: dict[str, object],
    made: Agreements | list[object],
    day: date,
    reason: str,
    agreement_id: str,
    ours: str,
) -> None:
    table = made if isinstance(made, Agreements) else agreements(made)  # type: ignore[arg-type]
    verdict = recognise(status(**changes), table, day)
    assert (verdict.recognised, verdict.reason) == (reason == "", reason)
    assert (verdict.agreement, verdict.programme) == (agreement_id, ours)
    assert bool(verdict.benefits) == verdict.recognised  # granted only when recognised
    assert verdict.reason == "" or verdict.reason in NOT_RECOGNISED


def test_the_operators_own_standing_wins_over_the_agreements_state() -> None:
    """A revoked operator under a suspended agreement is told as revoked: recognition would
    not come back when the agreement resumes."""
    suspended = [dataclasses.replace(CN_NZ, status="suspended", effective_until=date(2025, 6, 1))]
    assert recognise(status(status="revoked"), agreements(suspended), DAY).reason == (
        "status-revoked"
    )
    assert recognise(status(valid_to="2026-01-01"), agreements(suspended), DAY).reason == (
        "status-expired"
    )
    # the programme, a lasting fact about the operator, before the agreement's dates or status
    assert (
        recognise(status(programme="simplifications"), agreements(suspended), DAY).reason
        == "programme-not-covered"
    )
    assert recognise(status(), agreements(suspended), DAY).reason == "agreement-not-in-force"


def test_of_successive_agreements_the_one_in_effect_on_the_day_decides() -> None:
    old = agreement(
        "CN-NZ-2020",
        ["NZ"],
        effective_from=date(2020, 1, 1),
        effective_until=date(2024, 12, 31),
        recognises={"security-safety": "security-safety"},
        benefits=["priority-treatment"],
    )
    made = agreements([old, CN_NZ])
    now = recognise(status(), made, DAY)
    assert now.agreement == "CN-NZ" and now.recognised
    then = recognise(status(valid_from="2021-01-01"), made, date(2022, 1, 1))
    assert then.agreement == "CN-NZ-2020" and [b.code for b in then.benefits] == [
        "priority-treatment"
    ]
    gap = recognise(status(valid_from="2010-01-01"), made, date(2019, 1, 1))
    assert (gap.reason, gap.agreement) == ("agreement-not-in-force", "CN-NZ-2020")


def test_an_agreement_with_several_partners_recognises_each() -> None:
    pacific = dataclasses.replace(CN_NZ, id="CN-PACIFIC", partners=("NZ", "SG"))
    assert recognise(status(party="SG"), agreements([pacific]), DAY).agreement == "CN-PACIFIC"


def test_an_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        Verdict.refused("not-a-reason")


# a second agreement with NZ, later, recognising no programme: control results only
CONTROLS_ONLY = agreement(
    "CN-NZ-CONTROLS",
    ["NZ"],
    effective_from=date(2026, 1, 1),
    recognises={},
    benefits=["control-results"],
)

CONTROL_SCENARIOS = [
    ("in force, granting control results", [CN_NZ], "SG-as-NZ", "", "CN-NZ"),
    ("no agreement with SG", [CN_NZ], "SG", "no-agreement", ""),
    (
        "agreement without that benefit",
        [dataclasses.replace(CN_NZ, benefits=("reduced-inspections",))],
        "SG-as-NZ",
        "control-results-not-granted",
        "",
    ),
    (
        "agreement ended",
        [dataclasses.replace(CN_NZ, effective_until=date(2026, 1, 1))],
        "SG-as-NZ",
        "agreement-not-in-force",
        "CN-NZ",
    ),
    (
        "agreement suspended",
        [dataclasses.replace(CN_NZ, status="suspended")],
        "SG-as-NZ",
        "agreement-suspended",
        "CN-NZ",
    ),
    # two agreements granting control results overlap: the one in force counts, whichever
    # came first; only when both are suspended is the result refused, naming the earliest
    (
        "suspended earlier agreement, a later one in force",
        [dataclasses.replace(CN_NZ, status="suspended"), CONTROLS_ONLY],
        "SG-as-NZ",
        "",
        "CN-NZ-CONTROLS",
    ),
    (
        "in force earlier agreement, a later one suspended",
        [CN_NZ, dataclasses.replace(CONTROLS_ONLY, status="suspended")],
        "SG-as-NZ",
        "",
        "CN-NZ",
    ),
    (
        "both suspended",
        [
            dataclasses.replace(CN_NZ, status="suspended"),
            dataclasses.replace(CONTROLS_ONLY, status="suspended"),
        ],
        "SG-as-NZ",
        "agreement-suspended",
        "CN-NZ",
    ),
]


@pytest.mark.parametrize(
    ("made", "party", "reason", "agreement_id"),
    [s[1:] for s in CONTROL_SCENARIOS],
    ids=[s[0] for s in CONTROL_SCENARIOS],
)
def test_control_results(made: list[object], party: str, reason: str, agreement_id: str) -> None:
    record = control(party="NZ" if party == "SG-as-NZ" else party)
    verdict = recognise_control(record, agreements(made), DAY)  # type: ignore[arg-type]
    assert (verdict.recognised, verdict.reason, verdict.agreement) == (
        reason == "",
        reason,
        agreement_id,
    )


# --- what a declaration names ------------------------------------------------------------------


def test_the_demo_declaration_names_its_exporter_container_and_lrn() -> None:
    keys = declaration_keys(sample_declaration())
    assert keys.parties == (NamedParty("CN9133010060", EXPORTER),)
    assert (keys.mrn, keys.lrn) == ("", "CN2026LRN000417")
    assert keys.containers == ("MSKU7081234",) and keys.transport_documents == ()
    assert not keys.truncated


def test_aeo_parties_consignors_and_documents_at_every_level() -> None:
    d = GoodsDeclaration(id="26CN000310EX0000417", functional_reference_id="LRN-1")
    d.exporter.id = "CN9133010060"
    shipment = d.goods_shipment
    shipment.aeo_mutual_recognition_party.add(id="NZAEO10077", role_code="FW")
    shipment.consignor.id = "CN9133010060"  # the exporter is the consignor too
    d.consignment.consignor.id = " CNCONS01 "  # padded as CDS pads
    d.consignment.consignment_item.add(sequence_numeric="1").consignor.id = "CNCONS02"
    item = shipment.government_agency_goods_item.add(sequence_numeric="1")
    item.aeo_mutual_recognition_party.add(id="SGAEO555", role_code="MF")
    item.aeo_mutual_recognition_party.add(id="NZAEO10077", role_code="FW")  # repeated: once
    item.consignor.id = "CNCONS03"
    item.commodity.transport_equipment.add(id="TGHU1234567")
    shipment.consignment.transport_equipment.add(id="MSKU7081234")
    d.consignment.transport_equipment.add(id="MSKU7081234")  # again: once
    shipment.previous_document.add(category_code="Z", type_code="705", id="BL-CN-0001")
    shipment.previous_document.add(category_code="Z", type_code="DCR", id="not-transport")
    item.previous_document.add(category_code="Z", type_code="740", id="AWB-784-1234")
    d.additional_document.add(category_code="N", type_code="730", id="CMR-77")
    d.additional_document.add(category_code="C", type_code="710", id="INF-certificate")
    keys = declaration_keys(d)
    assert keys.parties == (
        NamedParty("NZAEO10077", AEO_PARTY, "FW"),
        NamedParty("SGAEO555", AEO_PARTY, "MF"),
        NamedParty("CN9133010060", EXPORTER),
        NamedParty("CNCONS01", CONSIGNOR),
        NamedParty("CNCONS02", CONSIGNOR),
        NamedParty("CN9133010060", CONSIGNOR),
        NamedParty("CNCONS03", CONSIGNOR),
    )
    assert keys.party_ids == [
        "NZAEO10077",
        "SGAEO555",
        "CN9133010060",
        "CNCONS01",
        "CNCONS02",
        "CNCONS03",
    ]
    assert (keys.mrn, keys.lrn) == ("26CN000310EX0000417", "LRN-1")
    assert keys.containers == ("MSKU7081234", "TGHU1234567")
    assert keys.transport_documents == ("BL-CN-0001", "AWB-784-1234", "CMR-77")


def test_values_no_store_could_hold_are_not_looked_up_and_the_count_is_bounded() -> None:
    d = GoodsDeclaration(functional_reference_id="x" * (MAX_KEY_LENGTH + 1))
    d.exporter.id = "EX\x00ID"
    for n in range(MAX_LOOKUPS + 5):
        d.goods_shipment.consignment.transport_equipment.add(id=f"CONT{n:07d}")
    keys = declaration_keys(d)
    assert keys.parties == () and keys.lrn == ""
    assert len(keys.containers) == MAX_LOOKUPS and keys.truncated
    assert keys.containers[0] == "CONT0000000"


def corpus(name: str) -> GoodsDeclaration:
    document = WcoXml().decode((CDS_SAMPLES / name).read_bytes())
    assert isinstance(document, GoodsDeclaration)
    return document


@pytest.mark.parametrize(
    ("name", "exporter", "lrn", "containers", "documents"),
    [
        # an export: the exporter's EORI, a container, no transport document as such
        (
            "TT_EX056a/Step1_TT_EX056a.xml",
            "XI427168118378",
            "U.7845574BWTPG",
            ("Container123",),
            (),
        ),
        # an import by air: the air waybill as previous document Z740
        ("TT_IM048a/TT_IM048a.xml", "", "TT_IM48a_180322_001", (), ("1GB553202734852-20210415",)),
        # a postal import: a container and the despatch note Z750
        (
            "TT_IM080a/TT_IM080a.xml",
            "",
            "NIP488_TC2_v0.1_1201_5",
            ("AD12345",),
            ("Despatch-12345",),
        ),
        # an import whose air waybill is an additional document N740, the INF C710 not one
        ("TT_IM180a/Step1_TT_IM180a.xml", "", "U.7867523R0R51", ("DM1234",), ("0054037",)),
    ],
)
def test_real_cds_declarations(
    name: str, exporter: str, lrn: str, containers: tuple[str, ...], documents: tuple[str, ...]
) -> None:
    keys = declaration_keys(corpus(name))
    assert [p.id for p in keys.parties if p.role == EXPORTER] == ([exporter] if exporter else [])
    assert keys.lrn == lrn and keys.containers == containers
    assert keys.transport_documents == documents


def test_an_aeo_party_in_a_real_declarations_xml_is_found() -> None:
    """DE 3/37 (16C AEOMutualRecognitionParty) as a trader would write it, added to a real CDS
    export at goods shipment level, through the WCO translator."""
    path = CDS_SAMPLES / "TT_EX056a/Step1_TT_EX056a.xml"
    xml = path.read_text()
    party = (
        "<AEOMutualRecognitionParty><ID>NZAEO10077</ID><RoleCode>FW</RoleCode>"
        "</AEOMutualRecognitionParty>"
    )
    xml, count = re.subn(r"(<GoodsShipment>)", r"\1" + party, xml, count=1)
    assert count == 1
    document = WcoXml().decode(xml.encode())
    assert isinstance(document, GoodsDeclaration)
    keys = declaration_keys(document)
    assert keys.parties[0] == NamedParty("NZAEO10077", AEO_PARTY, "FW")
    assert NamedParty("XI427168118378", EXPORTER) in keys.parties
