"""The ``ncts-p6`` format: NCTS phase 6 control messages read into ControlResult.

Datasets: HMRC's CC029C/CC060C/CC044C test files (each pinned as decoding or as refused, with
where and why), the hub's own fixtures in tests/data/ncts (hand-written against the schemas;
the corpus has no CC060C and no schema-valid CC029C), hostile XML, sniff heads and fuzz.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from xmlschema.exceptions import XMLResourceBlocked

from adapters import formats
from adapters.ncts import NctsP6, mapping, ncts_p6, schemas
from adapters.wco.translator import WcoXml
from adapters.xmlsafe import parse_xml
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import ControlResult
from hub.pb.customs_hub.v1 import control_pb2 as cpb
from tests.adversarial.test_xml import SECRET, Canary, hostile_documents
from tests.testdata import DATA as TEST_DATA
from tests.testdata import NCTS_CORPUS, git_blob_id

DATA = TEST_DATA / "ncts"
CORPUS_TESTS = NCTS_CORPUS / "test/uk/gov/hmrc/transitmovementsvalidator/versioned/v3_0/data"
NCTS = "http://ncts.dgtaxud.ec"
XSD = "{http://www.w3.org/2001/XMLSchema}"

TRANSLATOR = ncts_p6(XmlLimits())


def decode(data: bytes, source: str = "document") -> ControlResult:
    message = TRANSLATOR.decode(data, source)
    assert isinstance(message, ControlResult)
    return message


def refused(data: bytes, translator: NctsP6 = TRANSLATOR) -> TranslationError:
    with pytest.raises(TranslationError) as info:
        translator.decode(data)
    return info.value


def edited(data: bytes, edit: Callable[[etree._Element], None]) -> bytes:
    """The document after ``edit`` changed its tree (children are unqualified)."""
    root = etree.fromstring(data)
    edit(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def remove(path: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        for element in root.findall(path):
            element.getparent().remove(element)

    return edit


def set_text(path: str, value: str) -> Callable[[etree._Element], None]:
    def edit(root: etree._Element) -> None:
        for element in root.findall(path):
            element.text = value

    return edit


# --- the schema copies -----------------------------------------------------------------------


def test_schema_copies_are_byte_identical_and_listed_in_the_notice() -> None:
    notice = (schemas.SCHEMAS / "NOTICE").read_text()
    listed = dict(re.findall(r"^\s+(\S+\.xsd)\s+\d+\s+([0-9a-f]{40})", notice, re.MULTILINE))
    copies = sorted(p.name for p in schemas.SCHEMAS.glob("*.xsd"))
    assert sorted(listed) == copies
    for name in copies:  # the blob id is the file's id in the upstream repository
        assert git_blob_id((schemas.SCHEMAS / name).read_bytes()) == listed[name], name
    assert "ba2bb5b0a8e7f18943fe5ef9663cea7c3ddc3711" in notice
    assert "Apache License, Version 2.0" in notice
    license_text = (NCTS_CORPUS / "LICENSE").read_bytes()  # the same repository's licence
    assert (schemas.SCHEMAS / "LICENSE").read_bytes() == license_text


def test_exactly_the_schemas_the_three_messages_include_are_copied() -> None:
    needed: set[str] = set()
    pending = list(schemas.SCHEMA_FILES.values())
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed.add(name)
        path = schemas.SCHEMAS / name
        assert path.is_file(), f"{name} is included but not copied"
        tree = etree.parse(str(path))  # our own copy: trusted, local
        for include in tree.iter(f"{XSD}include", f"{XSD}import", f"{XSD}redefine"):
            location = include.get("schemaLocation", "")
            assert "/" not in location and ":" not in location, (name, location)
            pending.append(location)
    assert needed == {p.name for p in schemas.SCHEMAS.glob("*.xsd")}


@pytest.mark.slow
def test_the_fast_build_equals_a_build_checked_against_the_meta_schema(tmp_path: Path) -> None:
    """Production skips the meta-schema check (3 of 4 s); this proves nothing is lost."""
    for copy in schemas.SCHEMAS.glob("*.xsd"):
        (tmp_path / copy.name).write_bytes(copy.read_bytes())
    driver = tmp_path / "all.xsd"
    includes = "".join(f'<xs:include schemaLocation="{n}"/>' for n in schemas.SCHEMA_FILES.values())
    driver.write_text(
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{NCTS}">'
        f"{includes}</xs:schema>"
    )
    checked = schemas.build(driver, check_schema=True)
    assert checked.validation == "strict"
    assert checked.all_errors == []
    for name in schemas.SCHEMA_FILES:
        fast = schemas.schema_for(name)
        assert fast.all_errors == []
        assert f"{{{NCTS}}}{name}" in checked.maps.elements
        others = {f"{{{NCTS}}}{other}Type" for other in schemas.SCHEMA_FILES if other != name}
        assert set(checked.maps.types) - set(fast.maps.types) == others
        assert set(fast.maps.types) <= set(checked.maps.types)


def test_the_xsd_1_0_processor_would_see_no_declarations() -> None:
    """Why XMLSchema11: the copies say vc:minVersion="1.1", so a 1.0 processor prunes them
    and would accept any document."""
    legacy = xmlschema.XMLSchema10(
        str(schemas.SCHEMAS / "cc044c.xsd"), allow="sandbox", defuse="always", validation="skip"
    )
    assert "CC044C" not in legacy.elements
    assert "CC044C" in schemas.schema_for("CC044C").elements


# --- documents that decode -------------------------------------------------------------------

B1 = (DATA / "cc029c-control-b1.xml").read_bytes()
DOCUMENTS_REQUESTED = (DATA / "cc060c-documents.xml").read_bytes()
SEALS_BROKEN = (DATA / "cc044c-seals-broken.xml").read_bytes()

EXPECTED: dict[str, ControlResult] = {
    "cc029c-control-b1.xml": ControlResult(
        control_id="DE-REL-000117",
        declaration_id="26DE123456789012J5",
        functional_reference_id="LRN-DE-2026-0117",
        transport_document_id="BL-HAM-2026-0042",
        container_ids=["MSCU1234565", "TGHU7654328"],
        outcome=cpb.CONTROL_OUTCOME_DISCREPANCY,
        findings=[
            cpb.Finding(
                code="B1", description="Two packages more than declared in container MSCU1234565"
            )
        ],
        seals_applied=["DE-SEAL-0001", "DE-SEAL-0002", "DE-SEAL-0003"],
        officer_id="DE-OFFICER-4711",
        office_id="DE004058",
        controlled_at="2026-03-04T00:00:00Z",
        revision=202603040915304,
        stage=cpb.CONTROL_STAGE_RELEASED,
        control_result_code="B1",
    ),
    "cc060c-documents.xml": ControlResult(
        control_id="DE-CTL-000117",
        declaration_id="26DE123456789012J5",
        functional_reference_id="LRN-DE-2026-0117",
        findings=[
            cpb.Finding(
                code="TC10",
                description="Check of the commercial invoice against the declared value",
            ),
            cpb.Finding(code="TC31"),
            cpb.Finding(code="RDN380", description="Commercial invoice"),
            cpb.Finding(code="RDN705"),
        ],
        office_id="DE004058",
        controlled_at="2026-03-03T16:35:12Z",
        revision=202603031640002,
        stage=cpb.CONTROL_STAGE_DOCUMENTS_REQUIRED,
    ),
    "cc060c-intended.xml": ControlResult(
        control_id="NL-CTL-88",
        functional_reference_id="NL-LRN-5521",
        findings=[cpb.Finding(code="TC44", description="Scan of the trailer")],
        office_id="NL000396",
        controlled_at="2026-05-20T07:00:00Z",
        revision=202605200702091,
        stage=cpb.CONTROL_STAGE_INTENDED,
    ),
    "cc044c-seals-broken.xml": ControlResult(
        control_id="FR-ULR-3001",
        declaration_id="26DE123456789012J5",
        container_ids=["MSCU1234565"],
        outcome=cpb.CONTROL_OUTCOME_DISCREPANCY,
        findings=[
            cpb.Finding(
                code="SEALSNOK",
                description="seals not in good state: missing, damaged or with discrepancies",
            ),
            cpb.Finding(
                code="CONF-NOK",
                description="the unloaded goods do not conform to the declaration",
            ),
            cpb.Finding(
                code="UNLD-RMK",
                description="Seal DE-SEAL-0002 broken; 42 packages found, 40 declared",
            ),
            cpb.Finding(code="OTHER", description="Trailer door hinge bent"),
            cpb.Finding(code="SEAL", description="FR-SEAL-7788"),
            cpb.Finding(
                code="ITEMDIFF",
                description="unloading found data differing from the declaration",
                goods_item_sequence="1",
            ),
        ],
        office_id="FR000380",
        controlled_at="2026-03-06T00:00:00Z",
        revision=202603061405443,
        stage=cpb.CONTROL_STAGE_COMPLETED,
    ),
    "cc044c-conform.xml": ControlResult(
        control_id="FR-ULR-3002",
        declaration_id="26DE123456789013J4",
        outcome=cpb.CONTROL_OUTCOME_NO_FINDINGS,
        office_id="FR000380",
        controlled_at="2026-04-11T00:00:00Z",
        revision=202604110830003,
        stage=cpb.CONTROL_STAGE_COMPLETED,
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_hub_fixtures_decode_to_their_control_result(name: str) -> None:
    result = decode((DATA / name).read_bytes(), name)
    assert result == EXPECTED[name], f"{name}:\n{result}"


def test_every_hub_fixture_has_an_expected_result() -> None:
    assert sorted(p.name for p in DATA.glob("*.xml")) == sorted(EXPECTED)


def test_every_result_fits_edifact_and_reads_back_equal() -> None:
    """What partners' formats carry: control_id fits BGM 1004 (an..35), finding codes fit ERC
    9321 (an..8); each fixture's ControlResult is written as a CUSRES and read back equal."""
    writer = formats.translator_for("edifact")
    results = {**EXPECTED, **CORPUS_DECODED}
    for name in sorted(results):
        result = decode((DATA if name in EXPECTED else CORPUS_TESTS).joinpath(name).read_bytes())
        assert len(result.control_id) <= 35, name
        assert all(len(finding.code) <= 8 for finding in result.findings), name
        assert writer.decode(writer.encode(result), name) == result, name


# The corpus files of the three messages, each pinned: (file, expected result or the refusal's
# line, path and distinct problem count). Why the refused "valid" CC029C fails v60.4.16:
# countryOfDispatch "st" breaks [A-Z]{2} three times, and its ConsignmentItem carries Consignee,
# TransportDocument and TransportCharges, which ConsignmentItemType03 no longer allows there.
CORPUS_DECODED = {
    "cc044c-valid.xml": ControlResult(
        control_id="token",
        declaration_id="27WF9X1FQ9RCKN0TM3",
        outcome=cpb.CONTROL_OUTCOME_DISCREPANCY,  # conform 0
        findings=[
            cpb.Finding(
                code="CONF-NOK",
                description="the unloaded goods do not conform to the declaration",
            ),
            cpb.Finding(code="UNLD-INC", description="unloading not completed"),
        ],
        office_id="GB123456",
        controlled_at="2018-11-01T00:00:00Z",
        revision=200710260736283,
        stage=cpb.CONTROL_STAGE_COMPLETED,
    ),
}
CORPUS_REFUSED = {
    # file: (line, path, distinct problems, words of the reason)
    "cc029c-valid.xml": (112, "/CC029C/Consignment/countryOfDispatch", 6, "[A-Z]{2}"),
    "cc044c-invalid.xml": (2, "/CC044C/messageRecipient", 1, "Unexpected child"),
    "cc044c-invalid-message-sender.xml": (2, "/CC044C/messageSender", 1, ".{1,35}"),
}


def test_every_corpus_fixture_of_the_three_messages_is_pinned() -> None:
    found = sorted(
        p.name for p in CORPUS_TESTS.glob("*.xml") if p.name[:6] in ("cc029c", "cc060c", "cc044c")
    )
    assert found == sorted([*CORPUS_DECODED, *CORPUS_REFUSED])
    assert not any(name.startswith("cc060c") for name in found)  # hence tests/data/ncts


@pytest.mark.parametrize("name", sorted(CORPUS_DECODED))
def test_corpus_fixtures_valid_against_the_schemas_decode(name: str) -> None:
    assert decode((CORPUS_TESTS / name).read_bytes(), name) == CORPUS_DECODED[name]


@pytest.mark.parametrize("name", sorted(CORPUS_REFUSED))
def test_corpus_fixtures_invalid_against_the_schemas_are_refused(name: str) -> None:
    line, path, count, words = CORPUS_REFUSED[name]
    error = refused((CORPUS_TESTS / name).read_bytes())
    assert error.reason == "schema-invalid"
    assert (error.line, error.path) == (line, path)
    assert f"({count} problem{'' if count == 1 else 's'} found" in error.message
    assert words in error.message
    assert "XSD 60.4.16" in error.message


def test_the_corpus_cc029c_fails_for_exactly_the_pinned_reasons() -> None:
    data = (CORPUS_TESTS / "cc029c-valid.xml").read_bytes()
    root = parse_xml(data, XmlLimits())
    problems = list(
        schemas._distinct(schemas.schema_for("CC029C").iter_errors(root, use_location_hints=False))
    )
    item = "/CC029C/Consignment/HouseConsignment/ConsignmentItem"
    assert [(p.line, p.path) for p in problems] == [
        (112, "/CC029C/Consignment/countryOfDispatch"),
        (326, "/CC029C/Consignment/HouseConsignment/countryOfDispatch"),
        (431, f"{item}/countryOfDispatch"),
        (437, f"{item}/Consignee"),
        (517, f"{item}/TransportDocument"),
        (537, f"{item}/TransportCharges"),
    ]

    def repair(tree: etree._Element) -> None:
        for country in tree.iter("countryOfDispatch"):
            country.text = "IT"
        for name in ("Consignee", "TransportDocument", "TransportCharges"):
            remove(f"Consignment/HouseConsignment/ConsignmentItem/{name}")(tree)

    result = decode(edited(data, repair))  # nothing else was wrong with it
    assert (result.declaration_id, result.functional_reference_id) == (
        "27WF9X1FQ9RCKN0TM3",
        "MDTP-18",
    )
    assert result.control_result_code == "12"  # not a control result code: outcome unknown
    assert result.outcome == cpb.CONTROL_OUTCOME_UNSPECIFIED
    assert (result.officer_id, result.controlled_at) == ("string", "2002-06-24T00:00:00Z")
    assert list(result.findings) == [cpb.Finding(code="12", description="string")]
    assert (list(result.seals_applied), list(result.container_ids)) == (["string"], ["string"])
    assert result.office_id == "AB654321"
    assert result.transport_document_id == "AB123456"


# --- mapping rules, by mutation of the fixtures -----------------------------------------------


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        ("A1", cpb.CONTROL_OUTCOME_NO_FINDINGS),
        ("A2", cpb.CONTROL_OUTCOME_NO_FINDINGS),
        ("A5", cpb.CONTROL_OUTCOME_DISCREPANCY),
        ("B1", cpb.CONTROL_OUTCOME_DISCREPANCY),
        ("A3", cpb.CONTROL_OUTCOME_UNSPECIFIED),
        ("Z9", cpb.CONTROL_OUTCOME_UNSPECIFIED),
    ],
)
def test_control_result_codes_set_the_outcome(code: str, outcome: int) -> None:
    result = decode(edited(B1, set_text("ControlResult/code", code)))
    assert (result.outcome, result.control_result_code) == (outcome, code)
    assert result.findings[0].code == code


def test_release_without_control_result_reports_no_outcome() -> None:
    result = decode(edited(B1, remove("ControlResult")))
    assert result.stage == cpb.CONTROL_STAGE_RELEASED
    assert result.outcome == cpb.CONTROL_OUTCOME_UNSPECIFIED
    assert (result.control_result_code, result.officer_id, result.controlled_at) == ("", "", "")
    assert list(result.findings) == []
    assert len(result.seals_applied) == 3


def test_control_decision_without_documents_is_intended() -> None:
    result = decode(edited(DOCUMENTS_REQUESTED, remove("RequestedDocument")))
    assert result.stage == cpb.CONTROL_STAGE_INTENDED
    assert [f.code for f in result.findings] == ["TC10", "TC31"]


def test_documents_requested_without_named_controls_is_a_documentary_control() -> None:
    result = decode(edited(DOCUMENTS_REQUESTED, remove("TypeOfControls")))
    assert result.stage == cpb.CONTROL_STAGE_DOCUMENTS_REQUIRED
    assert result.control_type == cpb.CONTROL_TYPE_DOCUMENTARY


def test_unknown_control_types_are_kept_but_not_interpreted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert decode(DOCUMENTS_REQUESTED).control_type == cpb.CONTROL_TYPE_UNSPECIFIED
    monkeypatch.setattr(mapping, "CONTROL_TYPES", {"31": cpb.CONTROL_TYPE_PHYSICAL})
    assert decode(DOCUMENTS_REQUESTED).control_type == cpb.CONTROL_TYPE_PHYSICAL


@pytest.mark.parametrize(
    ("conform", "seals", "outcome", "codes"),
    [
        ("1", "1", cpb.CONTROL_OUTCOME_NO_FINDINGS, []),
        ("1", None, cpb.CONTROL_OUTCOME_NO_FINDINGS, []),
        ("1", "0", cpb.CONTROL_OUTCOME_DISCREPANCY, ["SEALSNOK"]),
        ("0", "1", cpb.CONTROL_OUTCOME_DISCREPANCY, ["CONF-NOK"]),
        ("0", "0", cpb.CONTROL_OUTCOME_DISCREPANCY, ["SEALSNOK", "CONF-NOK"]),
    ],
)
def test_unloading_outcome_follows_conformity_and_state_of_seals(
    conform: str, seals: str | None, outcome: int, codes: list[str]
) -> None:
    def edit(root: etree._Element) -> None:
        set_text("UnloadingRemark/conform", conform)(root)
        if seals is None:
            remove("UnloadingRemark/stateOfSeals")(root)
        else:
            set_text("UnloadingRemark/stateOfSeals", seals)(root)
        remove("UnloadingRemark/unloadingRemark")(root)
        remove("TransitOperation/otherThingsToReport")(root)
        remove("Consignment")(root)

    result = decode(edited(SEALS_BROKEN, edit))
    assert result.outcome == outcome
    assert [f.code for f in result.findings] == codes


def test_any_prefix_reads_the_same_and_children_must_stay_unqualified() -> None:
    renamed = B1.replace(b"ncts:", b"x_1.y:").replace(b"xmlns:ncts", b"xmlns:x_1.y")
    assert decode(renamed) == decode(B1)
    # A default namespace on the root qualifies the children too, which the schemas forbid
    # (elementFormDefault="unqualified"); cc060c-intended.xml resets it with xmlns="".
    default = B1.replace(b"ncts:CC029C", b"CC029C").replace(b"xmlns:ncts=", b"xmlns=")
    error = refused(default)
    assert (error.reason, error.line, error.path) == ("schema-invalid", 5, "/CC029C/messageSender")


# --- refusals ----------------------------------------------------------------------------------


def test_other_documents_are_unsupported() -> None:
    for name in ("cc025c-valid.xml", "cc043c-valid.xml", "cc015c-valid.xml"):
        error = refused((CORPUS_TESTS / name).read_bytes())
        assert error.reason == "unsupported-document", name
        assert error.path == f"/{name[:6].upper()}"
    assert refused(b"<Declaration/>").reason == "unsupported-document"


def test_the_root_must_be_in_the_ncts_namespace() -> None:
    error = refused(B1.replace(b'xmlns:ncts="http://ncts.dgtaxud.ec"', b'xmlns:ncts="urn:other"'))
    assert (error.reason, error.line, error.path) == ("schema-invalid", 4, "/CC029C")
    error = refused(b"<CC044C><messageSender>x</messageSender></CC044C>")
    assert error.reason == "schema-invalid"
    assert "no namespace" in error.message


def test_message_type_must_name_the_root() -> None:
    error = refused(SEALS_BROKEN.replace(b"<messageType>CC044C<", b"<messageType>CC029C<"))
    assert (error.reason, error.line, error.path) == ("schema-invalid", 10, "/CC044C/messageType")


def test_schema_errors_say_what_was_found_without_echoing_it() -> None:
    error = refused((CORPUS_TESTS / "cc044c-invalid-message-sender.xml").read_bytes())
    assert "tokentoken" not in str(error)
    assert "found a value of 40 characters" in error.message


def test_a_missing_schema_is_schema_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(schemas, "SCHEMAS", tmp_path)
    monkeypatch.setattr(schemas, "_built", {})
    error = refused(B1)
    assert error.reason == "schema-unavailable"
    assert schemas._built == {}  # nothing half-built is kept


def test_a_failure_inside_xmlschema_is_a_translation_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def iter_errors(self, *args: object, **kwargs: object) -> object:
            raise RecursionError("deep")

    monkeypatch.setattr(schemas, "_built", {"CC044C": Broken()})
    error = refused(SEALS_BROKEN)
    assert (error.reason, error.path) == ("schema-invalid", "/CC044C")


def test_encode_is_refused() -> None:
    with pytest.raises(TranslationError) as info:
        TRANSLATOR.encode(ControlResult())
    assert info.value.reason == "unsupported-direction"


def test_translator_contract() -> None:
    limits = XmlLimits(max_depth=12)
    translator = ncts_p6(limits)
    assert translator.limits is limits
    assert (translator.format_id, translator.media_type) == ("ncts-p6", "application/xml")
    assert translator.directions == frozenset({"decode"})
    assert "CC029C" in translator.description and "\n" not in translator.description


# --- hostile XML -------------------------------------------------------------------------------


@pytest.fixture
def canary() -> Iterator[Canary]:
    c = Canary()
    yield c
    c.close()


def test_hostile_documents_are_refused(canary: Canary, tmp_path: Path) -> None:
    secret = tmp_path / "passwd"
    secret.write_text(SECRET)
    built_before = dict(schemas._built)
    for case, data, reason in hostile_documents(secret, canary.url):
        with pytest.raises(TranslationError) as info:
            TRANSLATOR.decode(data)
        assert info.value.reason == reason, case
        assert SECRET not in str(info.value), case
    assert canary.requests == []
    assert schemas._built == built_before  # nothing reached schema loading


def test_hostile_ncts_documents_are_refused(canary: Canary) -> None:
    laughs = '<!ENTITY l0 "lol">' + "".join(
        f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)
    )
    body = SEALS_BROKEN.split(b"?>", 1)[1]
    cases = [
        (
            f"<!DOCTYPE p6:CC044C [{laughs}]>".encode() + body.replace(b"NCTS-FR", b"&l9;"),
            "forbidden-doctype",
        ),
        (
            f'<!DOCTYPE x [<!ENTITY e SYSTEM "{canary.url}/e">]>'.encode()
            + body.replace(b"NCTS-FR", b"&e;"),
            "forbidden-doctype",
        ),
        (
            body.replace(
                b'xmlns:p6="http://ncts.dgtaxud.ec"',
                b'xmlns:p6="http://ncts.dgtaxud.ec" '
                b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
                + f'xsi:schemaLocation="http://ncts.dgtaxud.ec {canary.url}/cc044c.xsd"'.encode(),
            ),
            "forbidden-schema-location",
        ),
    ]
    for data, reason in cases:
        assert refused(data).reason == reason
    assert canary.requests == []


def test_validation_never_follows_a_schema_location_hint(canary: Canary) -> None:
    """Below the xmlsafe check: even a tree carrying a URL hint is validated with the local
    schema only, and the hinted URL is never fetched."""
    root = parse_xml(SEALS_BROKEN, XmlLimits())
    root.set(
        "{http://www.w3.org/2001/XMLSchema-instance}schemaLocation",
        f"{NCTS} {canary.url}/cc044c.xsd urn:other {canary.url}/other.xsd",
    )
    schemas.validate(root, "document")
    assert canary.requests == []


def test_schema_builds_never_leave_their_folder(canary: Canary, tmp_path: Path) -> None:
    folder = tmp_path / "schemas"
    folder.mkdir()
    outside = tmp_path / "outside.xsd"
    outside.write_text(f'<xs:schema xmlns:xs="{XSD[1:-1]}"/>')
    for location in (f"{canary.url}/remote.xsd", "../outside.xsd", str(outside), outside.as_uri()):
        (folder / "main.xsd").write_text(
            f'<xs:schema xmlns:xs="{XSD[1:-1]}"><xs:include schemaLocation="{location}"/>'
            "</xs:schema>"
        )
        with pytest.raises(XMLResourceBlocked):
            schemas.build(folder / "main.xsd")
    assert canary.requests == []


@pytest.mark.parametrize(
    ("limits", "data"),
    [
        (XmlLimits(max_bytes=1000), B1),
        (XmlLimits(max_depth=4), B1),  # Consignment/TransportEquipment/Seal/identifier is 5 deep
        (XmlLimits(max_elements=50), B1),
    ],
)
def test_limits_are_enforced(limits: XmlLimits, data: bytes) -> None:
    assert decode(data) is not None  # the document itself is fine
    assert refused(data, NctsP6(limits)).reason == "limit-exceeded"


# --- sniff -------------------------------------------------------------------------------------

SNIFFED = [
    (b"<ncts:CC029C xmlns:ncts='http://ncts.dgtaxud.ec'>", True),
    (b'<CC060C xmlns="http://ncts.dgtaxud.ec">', True),
    (b"<CC044C/>", True),
    (b'\xef\xbb\xbf<?xml version="1.0" encoding="UTF-8"?>\n\n  <p6:CC044C PhaseID="x">', True),
    (b"<?xml version='1.0'?><!-- release - for -- transit --><?pi x?>\n<a_1.b:CC029C\n>", True),
    (b"<!-- <CC029C> -->\n<CC015C>", False),
    (b"<CC029CX/>", False),
    (b"<CC015C><CC029C/></CC015C>", False),
    (b"<Declaration>CC029C</Declaration>", False),
    (b"text <CC029C/>", False),
    ("<CC029C/>".encode("utf-16"), False),
    (b"", False),
]


@pytest.mark.parametrize(("head", "expected"), SNIFFED)
def test_sniff_reads_the_root_element_name(head: bytes, expected: bool) -> None:
    assert TRANSLATOR.sniff(head) is expected


def test_sniff_recognises_every_decodable_fixture_and_detect_picks_it() -> None:
    translators = {"ncts-p6": TRANSLATOR, "wco-xml": WcoXml()}
    for path in [*DATA.glob("*.xml"), *CORPUS_TESTS.glob("cc0[24][94]c-*.xml")]:
        head = path.read_bytes()[: formats.SNIFF_BYTES]
        assert TRANSLATOR.sniff(head), path.name
        assert formats.detect(path.read_bytes(), translators) == "ncts-p6", path.name
    assert not TRANSLATOR.sniff((CORPUS_TESTS / "cc015c-valid.xml").read_bytes())


@pytest.mark.parametrize(
    "head",
    [
        b"<!--" + b"-" * 4092,
        b"<!--" + b"- " * 2046,
        b"<?" + b"?" * 4094,
        b" " * 4095 + b"<",
        b"<!-- a -->" * 409 + b"<",
    ],
)
def test_sniff_is_fast_on_pathological_heads(head: bytes) -> None:
    started = time.perf_counter()
    assert TRANSLATOR.sniff(head) is False
    assert time.perf_counter() - started < 0.05


# --- concurrency and fuzz ----------------------------------------------------------------------


def test_concurrent_first_use_builds_each_schema_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(schemas, "_built", {})
    builds: list[str] = []
    real_build = schemas.build

    def counting(path: Path, *, check_schema: bool = False) -> xmlschema.XMLSchema11:
        builds.append(path.name)
        return real_build(path, check_schema=check_schema)

    monkeypatch.setattr(schemas, "build", counting)
    names = sorted(EXPECTED) * 3
    results: dict[int, ControlResult | BaseException] = {}

    def work(index: int, name: str) -> None:
        try:
            results[index] = decode((DATA / name).read_bytes(), name)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc

    threads = [threading.Thread(target=work, args=item) for item in enumerate(names)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [results[i] for i in range(len(names))] == [EXPECTED[name] for name in names]
    assert sorted(builds) == sorted(schemas.SCHEMA_FILES.values())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_bytes_decode_or_raise_translation_error(data: bytes) -> None:
    with contextlib.suppress(TranslationError):
        assert isinstance(TRANSLATOR.decode(data), ControlResult)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([B1, DOCUMENTS_REQUESTED, SEALS_BROKEN]),
    st.integers(min_value=0),
    st.binary(min_size=0, max_size=12),
    st.integers(min_value=0, max_value=12),
)
def test_fuzz_mutated_fixtures_decode_or_raise_translation_error(
    document: bytes, at: int, insert: bytes, cut: int
) -> None:
    at %= len(document)
    data = document[:at] + insert + document[at + cut :]
    with contextlib.suppress(TranslationError):
        assert isinstance(TRANSLATOR.decode(data), ControlResult)
