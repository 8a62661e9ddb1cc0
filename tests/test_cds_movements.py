"""CDS inventory-linking movements (``cds-movement``) and the ``submitDeclarationRequest``
wrapper (``wco-xml``): every such document of the corpus XML -> protobuf -> XML, equal after
canonicalisation as in tests/test_wco_corpus.py; errors with line and path; a movement that
travels from CN's hub to NZ's as a typed MovementEvent.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path
from xml.etree.ElementTree import canonicalize

import grpc
import pytest
from google.protobuf import json_format
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.formats import detect
from adapters.movement.translator import CdsMovement, MovementEvent
from adapters.protojson import ProtoJson
from adapters.wco.translator import GoodsDeclaration, WcoXml
from adapters.xmlsafe import parse_xml
from adapters.xmlwrapper import WRAPPER_PATH
from hub.core import agreements as agreements_core
from hub.core.errors import REASON_KEY, TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import SHORT_NAMES, business_keys
from hub.pb.customs_hub.v1 import declaration_pb2, movement_pb2
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.rpc.status import LINE_KEY, PATH_KEY
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_agreements import configure
from tests.test_exchange import eventually
from tests.testdata import CDS_SAMPLES, CORPUS

D = movement_pb2
SCHEMAS = Path(__file__).resolve().parents[1] / "schemas" / "inventory-linking"
EAL = CDS_SAMPLES / "TT_EX011a/Movement_Messages/EAL.xml"  # a bare arrival
WRAPPED_EAL = CDS_SAMPLES / "TT_EX038a/Movement_Messages/EAL.xml"  # inside the gateway wrapper
SUBMIT = CDS_SAMPLES / "TT_IM023a/TT_IM023a.xml"  # submitDeclarationRequest around a MetaData
UNSUPPORTED = CORPUS / "hmrc-customs-declarations/public/api/conf/3.0/examples/"
FILE_UPLOAD = UNSUPPORTED / "example_file_upload_202.xml"  # FileUploadRequest, root on line 1
CLI = [sys.executable, "-m", "hub.cli.main"]


def canonical(xml: str) -> str:
    return canonicalize(xml, strip_text=True, rewrite_prefixes=True)


def corpus_files() -> list[Path]:
    return sorted(CORPUS.rglob("*.xml"))


def is_movement(data: bytes) -> bool:
    return CdsMovement().sniff(data[:4096])


def is_submit_wrapper(data: bytes) -> bool:
    try:
        root = parse_xml(data, XmlLimits())
    except TranslationError:
        return False
    return etree.QName(root).localname == "submitDeclarationRequest"


def round_trips(translator: CdsMovement | WcoXml, path: Path) -> object:
    data = path.read_bytes()
    message = translator.decode(data, source=path.name)
    out = translator.encode(message)  # encode validates against the same schemas
    original = etree.tostring(parse_xml(data, XmlLimits())).decode()
    assert canonical(out.decode()) == canonical(original), path
    return message


def test_every_movement_document_round_trips() -> None:
    translator = CdsMovement()
    counts: collections.Counter[tuple[str, str]] = collections.Counter()
    wrapped = 0
    for path in corpus_files():
        data = path.read_bytes()
        if not is_movement(data):
            continue
        assert detect(data) == "cds-movement", path
        message = round_trips(translator, path)
        assert isinstance(message, MovementEvent)
        kind = D.MovementKind.Name(message.kind).removeprefix("MOVEMENT_KIND_")
        counts[
            (D.MovementDocument.Name(message.document).removeprefix("MOVEMENT_DOCUMENT_"), kind)
        ] += 1
        wrapped += any(r.path == WRAPPER_PATH for r in message.residue)
        assert business_keys(message), path  # every movement is found by a UCR, MRN or ICR
    print(f"\nround trip: {dict(counts)}")
    # Exactly the documents of the corpus: a sample lost from tests/corpus fails here.
    assert counts == {
        ("MOVEMENT_REQUEST", "ARRIVAL"): 11,
        ("MOVEMENT_REQUEST", "DEPARTURE"): 10,
        ("MOVEMENT_REQUEST", "ARRIVAL_ADVICE"): 3,
        ("CONSOLIDATION_REQUEST", "SHUT_CONSOLIDATION"): 1,
        ("QUERY_REQUEST", "QUERY"): 1,
        ("IMPORTS_GOODS_ARRIVAL", "ARRIVAL"): 2,
        ("IMPORTS_VALIDATE_MOVEMENT_RESPONSE", "VALIDATION"): 7,
    }, counts
    assert sum(counts.values()) == 35 and wrapped == 2


def test_every_submit_declaration_request_round_trips() -> None:
    translator = WcoXml()
    types: collections.Counter[str] = collections.Counter()
    for path in corpus_files():
        data = path.read_bytes()
        if not is_submit_wrapper(data):
            continue
        assert detect(data) == "wco-xml", path
        message = round_trips(translator, path)
        assert isinstance(message, GoodsDeclaration) and message.function_code == "9"
        [kept] = [r for r in message.residue if r.path == WRAPPER_PATH]
        assert b"requestCommon" in kept.xml and b"FunctionCode" not in kept.xml
        types[message.type_code] += 1
    assert sum(types.values()) == 13, types
    assert {"IMA", "EXD", "EXY"} <= set(types)


def test_arrival_fields_are_typed() -> None:
    message = CdsMovement().decode(WRAPPED_EAL.read_bytes())
    assert isinstance(message, MovementEvent)
    assert message.document == D.MOVEMENT_DOCUMENT_MOVEMENT_REQUEST
    assert message.kind == D.MOVEMENT_KIND_ARRIVAL and message.message_code == "EAL"
    assert message.ucr_block.ucr == "5GB575801025632-8QS1JAV" and message.ucr_block.ucr_type == "D"
    assert message.goods_location == "GBAUBELBFSBEL"
    assert message.goods_arrival_date_time == "2025-09-15T14:53:29.029+01:00"
    assert message.movement_reference == "YLDAIJGUPJGC5GHZTB6AH94UP"
    [kept] = message.residue
    assert kept.path == WRAPPER_PATH and b"gw:clientID" in kept.xml
    assert business_keys(message) == {"ucr": ["5GB575801025632-8QS1JAV"]}
    imports = CdsMovement().decode(
        (CDS_SAMPLES / "TT_IM083a/Movement_Messages/Step2_VMRes.xml").read_bytes()
    )
    assert isinstance(imports, MovementEvent)
    assert (imports.entry_number, imports.entry_version_number, imports.irc) == (
        "24GBCLZ0SCWWGCNAR4",
        "1",
        "000",
    )
    assert business_keys(imports) == {"mrn": ["24GBCLZ0SCWWGCNAR4"], "icr": ["CSPUCN123"]}
    consolidation = CdsMovement().decode(
        (CDS_SAMPLES / "TT_EX052a/Movement_Messages/Step5_CST.xml").read_bytes()
    )
    assert business_keys(consolidation) == {"ucr": ["GB/JOL7-YNP7888UO403UMMD1BHDBRCAL"]}


def test_proto_json_round_trip_of_a_movement() -> None:
    message = CdsMovement().decode(WRAPPED_EAL.read_bytes())
    as_json = ProtoJson().encode(message)
    value = json.loads(as_json)
    assert value["movementEvent"]["kind"] == "MOVEMENT_KIND_ARRIVAL"
    assert value["movementEvent"]["ucrBlock"]["ucr"] == "5GB575801025632-8QS1JAV"
    back = ProtoJson().decode(as_json)
    assert back == message
    assert canonical(CdsMovement().encode(back).decode()) == canonical(
        etree.tostring(parse_xml(WRAPPED_EAL.read_bytes(), XmlLimits())).decode()
    )
    assert "movementEvent" in json_format.MessageToJson(spb.SubmitRequest(movement_event=message))


# (case, bytes replaced, replacement, reason, line, element path)
BROKEN = [
    (
        "location too long",
        b"<inv:goodsLocation>GBAURMGRMGRMG</inv:goodsLocation>",
        b"<inv:goodsLocation>GBAURMGRMGRMGXXXXXXXXXX</inv:goodsLocation>",
        "schema-invalid",
        8,
        "/inventoryLinkingMovementRequest/goodsLocation",
    ),
    (
        "unknown message code",
        b"<inv:messageCode>EAL</inv:messageCode>",
        b"<inv:messageCode>XXX</inv:messageCode>",
        "schema-invalid",
        2,
        "/inventoryLinkingMovementRequest/messageCode",
    ),
    (
        "unknown root",
        b"inv:inventoryLinkingMovementRequest",
        b"inv:inventoryLinkingMovementRequests",
        "unsupported-document",
        1,
        "/inventoryLinkingMovementRequests",
    ),
]


@pytest.mark.parametrize(
    ("case", "old", "new", "reason", "line", "path"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_errors_name_line_and_path(
    case: str, old: bytes, new: bytes, reason: str, line: int, path: str
) -> None:
    data = EAL.read_bytes()
    assert old in data
    with pytest.raises(TranslationError) as info:
        CdsMovement().decode(data.replace(old, new), source="EAL.xml")
    error = info.value
    assert (error.reason, error.line, error.path) == (reason, line, path)
    assert "EAL.xml" in str(error)


def test_a_gateway_wrapper_must_hold_one_movement_request() -> None:
    data = WRAPPED_EAL.read_bytes()
    start = data.index(b"<inv:inventoryLinkingMovementRequest>")
    end = data.index(b"</inv:inventoryLinkingMovementRequest>") + len(
        b"</inv:inventoryLinkingMovementRequest>"
    )
    doubled = data[:end] + data[start:end] + data[end:]
    with pytest.raises(TranslationError) as info:
        CdsMovement().decode(doubled)
    assert info.value.reason == "unsupported-document"
    assert (
        info.value.line == 11
        and info.value.path == "/InventoryLinkingExportsInboundRequest/requestDetail"
    )


def test_a_partners_wrapper_residue_is_checked_on_the_way_out() -> None:
    base = CdsMovement().decode(WRAPPED_EAL.read_bytes())
    assert isinstance(base, MovementEvent)

    def refused(xml: bytes, value: str = "1") -> str:
        message = MovementEvent()
        message.CopyFrom(base)
        del message.residue[:]
        message.residue.append(declaration_pb2.Residue(path=WRAPPER_PATH, xml=xml, value=value))
        with pytest.raises(TranslationError) as info:
            CdsMovement().encode(message)
        return info.value.reason

    [kept] = base.residue
    assert refused(b"<other><requestDetail/></other>") == "invalid-content"
    assert refused(kept.xml, value="7") == "invalid-content"  # no such place
    assert refused(kept.xml, value="0") == "invalid-content"  # requestCommon, not requestDetail
    hostile = kept.xml.replace(b"DEC39_Root.xsd", b"http://127.0.0.1:9/evil.xsd")
    assert refused(hostile) == "forbidden-schema-location"
    # A second document smuggled into requestDetail, next to where the hub puts the one it
    # translated (and checked): a domestic system would read the partner's one first.
    smuggled = b"<n1:requestDetail><inv:inventoryLinkingQueryRequest/></n1:requestDetail>"
    assert refused(kept.xml.replace(b"<n1:requestDetail/>", smuggled)) == "invalid-content"
    doctype = b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>'
    assert refused(doctype) == "forbidden-doctype"
    mismatch = MovementEvent()
    mismatch.CopyFrom(base)
    mismatch.kind = D.MOVEMENT_KIND_DEPARTURE  # an EAL is an arrival
    with pytest.raises(TranslationError) as info:
        CdsMovement().encode(mismatch)
    assert info.value.reason == "invalid-content"


def test_schema_location_checks_locations_not_namespace_names() -> None:
    ok = (
        b'<inv:inventoryLinkingQueryRequest xmlns:inv="http://gov.uk/customs/inventoryLinking/v1"'
        b' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
        b' xsi:schemaLocation="http://gov.uk/customs/inventoryLinking/v1 request.xsd">'
        b"<inv:queryUCR><inv:ucr>GB/FCP1-0812EDMUCR9</inv:ucr><inv:ucrType>M</inv:ucrType>"
        b"</inv:queryUCR></inv:inventoryLinkingQueryRequest>"
    )
    assert CdsMovement().decode(ok).query_ucr.ucr == "GB/FCP1-0812EDMUCR9"  # type: ignore[attr-defined]
    # XML splits a list on space, tab, CR and LF only; NEL (U+0085) and NBSP (U+00A0) are
    # characters of the first part, so a URL after them is in a location's place.
    for hint in (
        b"http://127.0.0.1:9/evil.xsd",
        b"urn:x http://127.0.0.1:9/evil.xsd x",
        "urn:x\u0085y http://127.0.0.1:9/evil.xsd z".encode(),
        "urn:x\u00a0y http://127.0.0.1:9/evil.xsd z".encode(),
        "urn:x\u2003y file:///etc/passwd z".encode(),
    ):
        with pytest.raises(TranslationError) as info:
            CdsMovement().decode(
                ok.replace(b"http://gov.uk/customs/inventoryLinking/v1 request.xsd", hint)
            )
        assert info.value.reason == "forbidden-schema-location"


def test_schema_copies_are_byte_for_byte_hmrcs() -> None:
    notice = (SCHEMAS / "NOTICE").read_text()
    copies = sorted(p.relative_to(SCHEMAS).as_posix() for p in SCHEMAS.rglob("*.xsd"))
    assert len(copies) == 8
    for name in copies:
        data = (SCHEMAS / name).read_bytes()
        blob = (
            subprocess.run(
                ["git", "hash-object", "--stdin"], input=data, capture_output=True, check=True
            )
            .stdout.decode()
            .strip()
        )
        assert f"{name}" in notice and blob in notice, name


def test_unsupported_documents_name_the_roots_line() -> None:
    for translator, data, line in (
        (WcoXml(), FILE_UPLOAD.read_bytes(), 1),
        (WcoXml(), b"<?xml version='1.0'?>\n\n<Other/>", 3),
        (CdsMovement(), b"<?xml version='1.0'?>\n<inventoryLinkingOther/>", 2),
    ):
        with pytest.raises(TranslationError) as info:
            translator.decode(data, source="doc.xml")
        assert info.value.reason == "unsupported-document"
        assert info.value.line == line and info.value.path is not None


@pytest.mark.slow
def test_translate_cli_names_the_line_of_an_unsupported_document() -> None:
    refused = subprocess.run(
        [*CLI, "translate", str(FILE_UPLOAD), "--to", "proto-json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert f"{FILE_UPLOAD}:1: unsupported-document: " in refused.stderr


def test_agreement_share_tables_take_movement_events() -> None:
    assert SHORT_NAMES["MovementEvent"] == "customs_hub.v1.MovementEvent"
    body_type = "customs_hub.v1.MovementEvent"
    assert agreements_core.identity_problems(body_type, ["document", "ucr_block"]) == []
    assert agreements_core.identity_problems(body_type, ["document", "entry_number"]) == []
    problems = agreements_core.identity_problems(body_type, ["goods_location"])
    assert len(problems) == 2 and "document" in problems[0] and "ucr_block" in problems[1]


CN_MOVEMENTS = """
[agreements.CN-NZ-MOVEMENTS]
partners = ["NZ"]
effective_from = "2020-01-01"

[agreements.CN-NZ-MOVEMENTS.share.MovementEvent]
send = true
fields = ["document", "kind", "message_code", "ucr_block", "goods_location",
          "goods_arrival_date_time", "movement_reference"]
"""

NZ_MOVEMENTS = """
[agreements.NZ-CN-MOVEMENTS]
partners = ["CN"]
effective_from = "2020-01-01"

[agreements.NZ-CN-MOVEMENTS.share.MovementEvent]
receive = true
"""


async def test_an_arrival_travels_to_the_partner_as_a_movement_event(
    federation: Federation,
) -> None:
    configure(federation, "CN", CN_MOVEMENTS)
    configure(federation, "NZ", NZ_MOVEMENTS)
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    original = WRAPPED_EAL.read_bytes()
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        await sgrpc.DomesticStub(channel).Submit(
            spb.SubmitRequest(raw=spb.RawDocument(content=original), recipients=["NZ"]),
            timeout=10,
        )  # no format named: detected as cds-movement
    [(outbound, _)] = await cn.hub.store.views.outbound()
    assert outbound.body_type == "customs_hub.v1.MovementEvent"

    async def arrived():  # type: ignore[no-untyped-def]
        return await nz.hub.store.views.inbound()

    [inbound] = await eventually(arrived)
    assert inbound.body_type == "customs_hub.v1.MovementEvent"
    event = MovementEvent.FromString(inbound.body)
    assert event.kind == D.MOVEMENT_KIND_ARRIVAL and event.message_code == "EAL"
    assert event.ucr_block.ucr == "5GB575801025632-8QS1JAV"
    assert event.goods_location == "GBAUBELBFSBEL"
    assert event.goods_arrival_date_time == "2025-09-15T14:53:29.029+01:00"
    assert not event.residue  # the gateway wrapper stayed home: not in the policy's fields
    assert json.loads(inbound.business_keys) == {"ucr": ["5GB575801025632-8QS1JAV"]}
    received = [
        e
        for e in (trail.decode(leaf) for leaf in await nz.hub.store.trail.leaves())
        if e.kind == "received"
    ]
    assert [(k.name, k.value) for k in received[0].keys] == [("ucr", "5GB575801025632-8QS1JAV")]
    async with grpc.aio.insecure_channel(nz.config.domestic_listen) as channel:
        stream = sgrpc.DomesticStub(channel).Subscribe(
            spb.SubscribeRequest(subscriber="border", format="cds-movement")
        )
        handed = await stream.read()
        stream.cancel()
    assert handed.body_type == "customs_hub.v1.MovementEvent"
    assert handed.document_format == "cds-movement"
    inner = parse_xml(original, XmlLimits())[1][0]  # the movement request, without the wrapper
    assert canonical(handed.document.decode()) == canonical(etree.tostring(inner).decode())


async def test_an_unsupported_document_is_refused_with_its_line_over_grpc(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await sgrpc.DomesticStub(channel).Submit(
                spb.SubmitRequest(
                    raw=spb.RawDocument(format="wco-xml", content=FILE_UPLOAD.read_bytes()),
                    recipients=["NZ"],
                ),
                timeout=10,
            )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    metadata = dict(info.value.trailing_metadata() or ())
    assert metadata[REASON_KEY] == "unsupported-document"
    assert metadata[LINE_KEY] == "1" and metadata[PATH_KEY] == "/FileUploadRequest"
    assert "line 1" in (info.value.details() or "")
    assert await cn.hub.store.views.outbound() == []


def test_every_element_of_the_movement_schemas_has_a_typed_field() -> None:
    """docs/formats/cds-movement.md lists them; none goes to residue by design."""
    from adapters.movement.translator import ROOTS
    from adapters.wco.codec import slots

    untyped: list[str] = []
    count = 0

    def walk(path: str, descriptor: object) -> None:
        nonlocal count
        for slot in slots(path, descriptor):  # type: ignore[arg-type]
            count += 1
            if slot.field is None:
                untyped.append(f"{path}/{slot.short}")
            elif slot.field.message_type is not None:
                walk(slot.path, slot.field.message_type)

    for root in ROOTS:
        walk(root.short, MovementEvent.DESCRIPTOR)
    assert untyped == [] and count == 198
    doc = (Path(__file__).resolve().parents[1] / "docs/formats/cds-movement.md").read_text()
    assert doc.count("\n| `") >= count


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0), st.binary(min_size=1, max_size=8))
def test_mutated_movements_translate_or_raise_translation_error(offset: int, junk: bytes) -> None:
    data = WRAPPED_EAL.read_bytes()
    at = offset % len(data)
    mutated = data[:at] + junk + data[at + len(junk) :]
    try:
        message = CdsMovement().decode(mutated)
    except TranslationError:
        return
    CdsMovement().encode(message)  # whatever was accepted also writes back out, valid


def test_an_invalid_movement_inside_the_wrapper_names_its_line_in_the_file() -> None:
    data = WRAPPED_EAL.read_bytes()
    broken = data.replace(
        b"<inv:goodsLocation>GBAUBELBFSBEL", b"<inv:goodsLocation>GBAUBELBFSBELXXXXXXXXXX"
    )
    with pytest.raises(TranslationError) as info:
        CdsMovement().decode(broken)
    assert info.value.reason == "schema-invalid" and info.value.line == 18
    assert info.value.path == (
        "/InventoryLinkingExportsInboundRequest/requestDetail/inventoryLinkingMovementRequest/goodsLocation"
    )


def test_a_domestic_movement_needs_its_document_and_a_key() -> None:
    from hub.app.submission import check_submission
    from hub.core.errors import SubmissionError

    event = MovementEvent(message_code="EAL", goods_location="GBAUBELBFSBEL")
    with pytest.raises(SubmissionError) as info:
        check_submission(event, "CN")
    assert info.value.reason == "missing-business-key" and "document" in str(info.value)
    event.document = D.MOVEMENT_DOCUMENT_MOVEMENT_REQUEST
    with pytest.raises(SubmissionError) as info:
        check_submission(event, "CN")
    assert info.value.reason == "missing-business-key" and "UCR" in str(info.value)
    event.ucr_block.ucr = "5GB575801025632-8QS1JAV"
    check_submission(event, "CN")
