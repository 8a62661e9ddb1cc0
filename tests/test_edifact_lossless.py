"""Lossless EDIFACT (issue 19): every fixture decodes and writes back to the same content
segments (UNH..UNT exclusive, per message, in order); the residue keeps what the mapping does
not type, with its position; the typed fields are still set; a message cut by a sharing
policy writes valid EDIFACT or is refused naming the segment; and GoodsDeclaration is
written as CUSDEC, including the declarations of the WCO corpus (or refused naming the segment).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.edifact import Edifact, residue
from adapters.edifact.syntax import Segment, read_interchange
from adapters.edifact.translator import MAX_SEGMENTS
from adapters.protojson import ProtoJson
from adapters.wco.translator import WcoXml
from hub.core.agreements import field_problems, keep_fields
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import ControlResult, GoodsDeclaration, Response
from tests.test_wco_corpus import WCO_ROOTS, corpus_files, defect_of, root_name

DATA = Path(__file__).parent / "data" / "edifact"
# Every EDIFACT fixture of the suite: these, and the national-code ones of the code-list tests.
FIXTURES = sorted(
    str(p.relative_to(DATA.parent))
    for folder in (DATA, DATA.parent / "code-lists")
    for p in folder.glob("*.edi")
)
CLOCK = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
FORMAT = Edifact(max_bytes=XmlLimits().max_bytes, clock=lambda: CLOCK)
SEGMENT_PATH = re.compile(r"(SG\d+/)*[A-Z]{3}")
CLI = [sys.executable, "-m", "hub.cli.main"]
CDS_TYPE_CODES = re.compile(r"[A-Z]{3}")  # CDS declaration type + additional type, e.g. IMZ


def sample(name: str) -> bytes:
    """A fixture by its name here, or by its path below tests/data (as FIXTURES names them)."""
    return (DATA.parent / name if "/" in name else DATA / name).read_bytes()


def contents(data: bytes) -> list[tuple[str, list[tuple[str, tuple[tuple[str, ...], ...]]]]]:
    """Per message: its type (UNH S009 0065) and its content segments, UNH..UNT exclusive."""
    interchange = read_interchange(data, max_bytes=FORMAT.max_bytes, max_segments=300_000)
    return [
        (message[0].component(1, 0), [(s.tag, s.elements) for s in message[1:-1]])
        for message in interchange.messages
    ]


def messages_of(data: bytes) -> list[Any]:
    items = FORMAT.decode_all(data)
    for item in items:
        if item.error is not None:
            raise item.error
    return [item.message for item in items if item.message is not None]


def encoded(message: Message) -> bytes | TranslationError:
    """The EDIFACT written, or the refusal (to assert on outside an except block)."""
    try:
        return FORMAT.encode(message)
    except TranslationError as exc:
        return exc


def without_residue(message: Any) -> Any:
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField("edifact_residue")
    return copy


# --------------------------------------------------------------------------------------------
# The corpus: every fixture, segment for segment
# --------------------------------------------------------------------------------------------


def test_the_fixture_corpus_covers_what_issue_19_asks() -> None:
    assert {
        "edifact/cusres_control_national.edi",
        "edifact/cusdec_export_full.edi",
        "edifact/cusres_multi.edi",
        "code-lists/cusres_national_agency.edi",
    } <= set(FIXTURES)
    assert len(contents(sample("cusres_multi.edi"))) == 3


@pytest.mark.parametrize("name", FIXTURES)
def test_every_fixture_writes_back_segment_for_segment(name: str) -> None:
    data = sample(name)
    written = FORMAT.encode_all(messages_of(data))
    assert contents(written) == contents(data)


@pytest.mark.parametrize("name", FIXTURES)
def test_writing_twice_gives_the_same_bytes(name: str) -> None:
    written = FORMAT.encode_all(messages_of(sample(name)))
    assert FORMAT.encode_all(messages_of(written)) == written


@pytest.mark.parametrize("name", FIXTURES)
def test_round_trip_through_proto_json_is_lossless(name: str) -> None:
    json_format = ProtoJson()
    data = sample(name)
    again = [json_format.decode(json_format.encode(m)) for m in messages_of(data)]
    assert contents(FORMAT.encode_all(again)) == contents(data)


@pytest.mark.slow
def test_translate_cli_writes_the_fixture_back(tmp_path: Path) -> None:
    out = tmp_path / "out.edi"
    for name in ("cusres_control_national.edi", "cusdec_export_full.edi"):
        result = subprocess.run(
            [*CLI, "translate", str(DATA / name), "--to", "edifact", "-o", str(out)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert contents(out.read_bytes()) == contents(sample(name))


# --------------------------------------------------------------------------------------------
# What is typed, what is kept, and where
# --------------------------------------------------------------------------------------------


def test_residue_keeps_each_untyped_segment_at_its_position() -> None:
    data = sample("cusres_control_national.edi")
    (message,) = messages_of(data)
    ((_, original),) = contents(data)
    kept = message.edifact_residue
    for seg in kept.segments:
        kept_segment = residue.from_proto(seg)
        assert original[seg.position] == (kept_segment.tag, kept_segment.elements)
    by_position = {seg.position: seg for seg in kept.segments}
    # The house bill, the master bill and the inspection report reference are not typed.
    assert [(by_position[p].tag, by_position[p].elements[0].components) for p in (18, 19, 20)] == [
        ("RFF", ["BH", "HBL-RTM-2024-0815"]),
        ("RFF", ["MB", "MAEU240301RTM"]),
        ("RFF", ["ALW", "NL-INSP-2024-3317"]),
    ]
    assert by_position[15].tag == "NAD" and by_position[15].elements[0].components == ["AG"]
    assert by_position[17].tag == "DTM"  # the declaration's acceptance date, under RFF+ABT
    assert [by_position[p].tag for p in (7, 8, 9)] == ["TDT", "LOC", "LOC"]
    # The control time came as 203 (CCYYMMDDHHMM): kept as sent, the typed 204 suppressed.
    assert by_position[1].elements[0].components == ["137", "202403011015", "203"]
    assert list(kept.suppressed) == [1]
    # Typed segments are not in the residue: MRN, seal, revision, office, officer, stage.
    typed = {("RFF", "ABT"), ("RFF", "SN"), ("RFF", "FV"), ("NAD", "CM"), ("CTA", "IC")}
    assert not {(s.tag, s.elements[0].components[0]) for s in kept.segments} & typed
    assert "GIS" not in {s.tag for s in kept.segments}


def test_typed_fields_are_still_read() -> None:
    (result,) = messages_of(sample("cusres_control_national.edi"))
    assert isinstance(result, ControlResult)
    assert result.declaration_id == "24NL0003960000471"
    assert result.control_id == "NL-CTL-2024-004711"
    assert result.controlled_at == "2024-03-01T10:15:00Z"
    assert list(result.seals_applied) == ["NL-SEAL-77812"] and result.revision == 1
    assert (result.office_id, result.officer_id) == ("NL000396", "OFFICER-2231")
    (declaration,) = messages_of(sample("cusdec_export_full.edi"))
    assert isinstance(declaration, GoodsDeclaration)
    assert (declaration.id, declaration.functional_reference_id) == (
        "24DE004851000917",
        "LRN-DE-2024-00917",
    )
    assert declaration.exit_office.id == "NL000396"
    assert declaration.agent.id == "DE111222333" and declaration.declarant.id
    items = declaration.goods_shipment.government_agency_goods_item
    assert [c.id for c in items[0].commodity.classification] == ["84571010", "8457101000"]
    assert {s.tag for s in declaration.edifact_residue.segments} >= {
        "TDT", "CUX", "GIS", "DMS", "LIN", "TAX", "CNT", "AUT", "TOD", "SEL", "EQD",
    }  # fmt: skip
    kinds = [type(m).__name__ for m in messages_of(sample("cusres_multi.edi"))]
    assert kinds == ["Response", "ControlResult", "Response"]


def test_a_message_the_mapping_types_whole_has_no_residue() -> None:
    written = FORMAT.encode(
        ControlResult(control_id="C-1", stage="CONTROL_STAGE_RELEASED", declaration_id="MRN1")
    )
    (message,) = messages_of(written)
    assert not message.HasField("edifact_residue")


def test_residue_of_each_message_is_its_own() -> None:
    response, control, tax = messages_of(sample("cusres_multi.edi"))
    assert [s.tag for s in tax.edifact_residue.segments] == ["TAX", "MOA"]
    assert "FTX" in {s.tag for s in control.edifact_residue.segments}
    assert {s.tag for s in response.edifact_residue.segments} == {"LOC", "NAD", "RFF"}
    # A Response's further responses are written after it, each with its own residue.
    head = Response()
    head.CopyFrom(response)
    head.further_responses.add().CopyFrom(tax)
    data = sample("cusres_multi.edi")
    written = contents(FORMAT.encode(head))
    assert written == [contents(data)[0], contents(data)[2]]


# --------------------------------------------------------------------------------------------
# Typed fields changed after reading
# --------------------------------------------------------------------------------------------

POLICY = ["control_id", "revision", "declaration_id", "stage"]  # names no edifact_residue


def test_a_policy_cut_without_the_residue_writes_the_typed_fields_alone() -> None:
    (message,) = messages_of(sample("cusres_control_national.edi"))
    cut = keep_fields(message, POLICY)
    assert not cut.HasField("edifact_residue")
    (back,) = messages_of(FORMAT.encode(cut))
    assert back.declaration_id == "24NL0003960000471" and not back.officer_id
    assert without_residue(back) == cut


def _all_but(*cut: str) -> list[str]:
    return [f.name for f in ControlResult.DESCRIPTOR.fields if f.name not in cut]


def test_a_policy_cut_that_keeps_the_residue_leaves_out_only_the_cut_segments() -> None:
    data = sample("cusres_control_national.edi")
    (message,) = messages_of(data)
    cut = keep_fields(message, _all_but("seals_applied", "revision"))
    written = FORMAT.encode(cut)
    ((_, original),) = contents(data)
    expected = [s for s in original if s[0] != "RFF" or s[1][0][0] not in ("SN", "FV")]
    assert contents(written)[0][1] == expected
    (back,) = messages_of(written)
    assert not back.seals_applied and not back.revision
    assert without_residue(back) == without_residue(cut)


def test_a_cut_that_keeps_the_residue_sends_no_cut_value_in_the_shapes() -> None:
    """Finding codes (ERC 9321) and item numbers begin their segments: a policy that keeps the
    residue but cuts the findings must not send the codes in the writer's shapes."""
    (message,) = messages_of(sample("cusres_released.edi"))
    assert [f.code for f in message.findings] == ["CTL01"]
    cut = keep_fields(message, _all_but("findings"))
    assert "CTL01" not in cut.SerializeToString().decode("latin-1")
    assert "ERC" in cut.edifact_residue.written_shapes


def test_a_cut_that_orphans_a_partner_segment_is_refused_naming_it() -> None:
    (message,) = messages_of(sample("cusres_control_national.edi"))
    # The partner's COM belongs to the officer's CTA; without the officer it has no place.
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(keep_fields(message, _all_but("officer_id")))
    assert (caught.value.reason, caught.value.path) == ("schema-invalid", "COM")
    assert "cannot be written as CUSRES" in caught.value.message


def test_the_residue_can_hold_a_cut_field_in_the_partners_form() -> None:
    """Why a policy should name edifact_residue only when it keeps the message whole: the
    partner wrote the control time as 203, which the residue keeps as sent."""
    (message,) = messages_of(sample("cusres_control_national.edi"))
    cut: Any = keep_fields(message, _all_but("controlled_at"))
    assert not cut.controlled_at
    (back,) = messages_of(FORMAT.encode(cut))
    assert back.controlled_at == message.controlled_at


CUTTABLE = sorted(
    f.name for f in ControlResult.DESCRIPTOR.fields if f.name not in ("stage", "edifact_residue")
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["cusres_control_national.edi", "cusres_released.edi"]),
    kept=st.sets(st.sampled_from(CUTTABLE)),
    keep_residue=st.booleans(),
)
def test_any_cut_writes_valid_edifact_or_is_refused_naming_a_segment(
    name: str, kept: set[str], keep_residue: bool
) -> None:
    (message,) = messages_of(sample(name))
    fields = sorted(kept | {"stage"} | ({"edifact_residue"} if keep_residue else set()))
    cut: Any = keep_fields(message, fields)
    written = encoded(cut)
    if isinstance(written, TranslationError):
        assert keep_residue and written.reason == "schema-invalid"
        assert written.path and SEGMENT_PATH.fullmatch(written.path), written.path
        return
    (back,) = messages_of(written)
    assert back.control_id == cut.control_id and back.stage == cut.stage
    if not keep_residue:
        assert without_residue(back) == cut


def test_policies_can_name_the_residue_and_drop_it_when_they_do_not() -> None:
    for kind in (ControlResult, Response, GoodsDeclaration):
        assert field_problems(kind, ["edifact_residue", "edifact_residue.segments"]) == []
    (declaration,) = messages_of(sample("cusdec_export_full.edi"))
    assert not keep_fields(declaration, ["id", "exporter"]).HasField("edifact_residue")
    kept = keep_fields(declaration, ["id", "edifact_residue"])
    assert kept.edifact_residue == declaration.edifact_residue


def test_wco_xml_writes_an_edifact_message_without_its_residue() -> None:
    wco = WcoXml()
    (declaration,) = messages_of(sample("cusdec_export_full.edi"))
    back: Any = wco.decode(wco.encode(declaration))
    assert not back.HasField("edifact_residue") and not back.residue
    assert back.id == declaration.id and back.exporter == declaration.exporter


def test_a_forged_residue_tag_is_refused_before_anything_is_written() -> None:
    (message,) = messages_of(sample("cusres_released.edi"))
    message.edifact_residue.segments.add(position=1, tag="FTX+AAI'UNZ")
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(message)
    assert caught.value.reason == "schema-invalid" and caught.value.path == "edifact_residue"
    message.edifact_residue.segments[-1].tag = "UNH"
    with pytest.raises(TranslationError):
        FORMAT.encode(message)


def test_a_residue_segment_with_a_control_character_is_refused() -> None:
    (message,) = messages_of(sample("cusres_released.edi"))
    message.edifact_residue.segments.add(position=2, tag="FTX").elements.add(components=["A\x01"])
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(message)
    assert caught.value.reason == "schema-invalid" and "control character" in caught.value.message


# --------------------------------------------------------------------------------------------
# Generated messages: fixtures with segments left out
# --------------------------------------------------------------------------------------------


def _lines(name: str) -> list[str]:
    return sample(name).decode("latin-1").splitlines(keepends=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(FIXTURES), data=st.data())
def test_a_valid_variant_of_a_fixture_round_trips_exactly(name: str, data: st.DataObject) -> None:
    """Leave out any content segments (the fixtures hold one segment per line), fix the UNT
    counts; whatever still reads as a message writes back segment for segment."""
    lines = _lines(name)
    content = [
        i for i, line in enumerate(lines) if line[:3] not in ("UNA", "UNB", "UNH", "UNT", "UNZ")
    ]
    dropped = data.draw(st.sets(st.sampled_from(content), max_size=len(content) // 2))
    out: list[str] = []
    count = 0
    for i, line in enumerate(lines):
        if i in dropped:
            continue
        if line.startswith("UNH"):
            count = 0
        count += 1
        if line.startswith("UNT"):
            reference = line.rstrip("'\n").split("+")[2]
            line = f"UNT+{count}+{reference}'\n"
        out.append(line)
    variant = "".join(out).encode("latin-1")
    items = FORMAT.decode_all(variant)
    good = [item.message for item in items if item.message is not None]
    if not good:
        return
    expected = [c for c, item in zip(contents(variant), items, strict=True) if item.error is None]
    assert contents(FORMAT.encode_all(good)) == expected


def _timed_round(n: int) -> float:
    written = [Segment("RFF", (("SN", f"S{i}"),)) for i in range(n // 2)] * 2
    original = [
        Segment("RFF", (("SN", f"S{i}"),))
        if i % 2
        else Segment("FTX", (("AAI",), (), (), (str(i),)))
        for i in range(n)
    ]
    started = time.perf_counter()
    kept = residue.compute(original, written)
    rebuilt = residue.apply(kept, written, "ControlResult")
    elapsed = time.perf_counter() - started
    assert len(kept.segments) == 3 * n // 4  # the FTX, and the RFF beyond the written ones
    assert [residue.key(s) for s in rebuilt] == [residue.key(s) for s in original]
    return elapsed


@pytest.mark.slow
def test_residue_time_grows_about_linearly_up_to_the_segment_limit() -> None:
    """Half the segments typed, half not, at a quarter of MAX_SEGMENTS and at all of it: the
    matching is a dictionary and binary searches, so four times the segments take about four
    times as long (a quadratic diff would take sixteen)."""
    small = _timed_round(MAX_SEGMENTS // 4)
    large = _timed_round(MAX_SEGMENTS)
    assert large / small < 9, (small, large)


def test_the_residue_built_as_wire_bytes_equals_the_one_built_as_messages() -> None:
    original = [
        Segment("FTX", (("AAI",), (), ("",), ("é", "", "x" * 300))),
        Segment("RFF", (("BH", "H1"),)),
        Segment("DTM", (("137", "2024", "102"),)),
    ]
    kept = residue.compute(original * 50, [Segment("DTM", (("137", "2024", "102"),))])
    assert list(kept.segments) == [
        residue.to_proto(seg, position)
        for position, seg in enumerate(original * 50)
        if position != 2
    ]
    assert list(kept.written_shapes) == ["DTM:137"] and not kept.suppressed


# --------------------------------------------------------------------------------------------
# CUSDEC writer
# --------------------------------------------------------------------------------------------


def test_a_goods_declaration_built_in_the_hub_is_written_as_cusdec() -> None:
    declaration = GoodsDeclaration(
        type_code="929", functional_reference_id="LRN-1", function_code="9", id="24NL1"
    )
    declaration.exporter.id = "GB1"
    declaration.exporter.name = "A" * 40  # two C080 lines
    declaration.exporter.address.line = "B" * 36
    item = declaration.goods_shipment.government_agency_goods_item.add(sequence_numeric="1")
    item.commodity.description = "C" * 150  # three 4440 lines
    item.commodity.classification.add(id="87089997", identification_type_code="TSP")
    item.packaging.add(sequence_numeric="1", type_code="CT").quantity_quantity.value = "3"
    written = FORMAT.encode(declaration)
    ((kind, segments),) = contents(written)
    assert kind == "CUSDEC"
    assert [tag for tag, _ in segments] == ["BGM", "RFF", "NAD", "UNS", "CST", "FTX", "PAC", "UNS"]
    back = FORMAT.decode(written)
    assert without_residue(back) == declaration and not back.HasField("edifact_residue")


def test_a_declaration_cusdec_cannot_hold_is_refused_naming_the_segment() -> None:
    declaration = GoodsDeclaration(type_code="929", functional_reference_id="LRN-1")
    item = declaration.goods_shipment.government_agency_goods_item.add(sequence_numeric="1")
    for n in range(6):
        item.commodity.classification.add(id=f"8708{n}")
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(declaration)
    assert (caught.value.reason, caught.value.path) == ("schema-invalid", "SG30/CST")
    declaration.goods_shipment.ClearField("government_agency_goods_item")
    declaration.exporter.name = "N" * 200
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(declaration)
    assert (caught.value.reason, caught.value.path) == ("schema-invalid", "SG6/NAD")


def _cds_declarations() -> list[tuple[str, GoodsDeclaration]]:
    wco = WcoXml()
    found = []
    for path in corpus_files():
        data = path.read_bytes()
        if defect_of(path) or root_name(data) not in WCO_ROOTS:
            continue
        message = wco.decode(data, source=path.name)
        if isinstance(message, GoodsDeclaration):
            found.append((path.name, message))
    return found


def test_every_cds_declaration_writes_as_cusdec_or_is_refused_naming_the_segment() -> None:
    """CDS type codes (IMZ, EXA, ...) are not D.96B 1001 codes: every declaration is refused at
    BGM as it stands. With a 1001 code (929) in their place, the rest of the mapping is tried:
    each writes valid CUSDEC whose mapped fields read back equal, or is refused naming the
    segment (CDS document codes in DOC, a weight without its unit in MEA)."""
    declarations = _cds_declarations()
    assert len(declarations) > 200
    written = 0
    for name, declaration in declarations:
        assert CDS_TYPE_CODES.fullmatch(declaration.type_code), name
        with pytest.raises(TranslationError) as caught:
            FORMAT.encode(declaration)
        assert (caught.value.reason, caught.value.path) == ("schema-invalid", "BGM"), name
        declaration.type_code = "929"
        data = encoded(declaration)
        if isinstance(data, TranslationError):
            assert data.reason == "schema-invalid", (name, data.message)
            assert data.path and SEGMENT_PATH.fullmatch(data.path), (name, data.path)
            continue
        written += 1
        back: Any = FORMAT.decode(data)
        assert not back.HasField("edifact_residue"), name  # all of it typed
        assert FORMAT.encode(back) == data, name  # stable: the mapped part is exact
        assert (back.id, back.functional_reference_id, back.function_code) == (
            declaration.id,
            declaration.functional_reference_id,
            declaration.function_code,
        )
        assert back.declaration_office_id == declaration.declaration_office_id
        for role in ("exporter", "declarant", "agent"):
            assert getattr(back, role).id == getattr(declaration, role).id, (name, role)
        items = declaration.goods_shipment.government_agency_goods_item
        read = back.goods_shipment.government_agency_goods_item
        assert [i.sequence_numeric for i in read] == [i.sequence_numeric for i in items]
        assert [[c.id for c in i.commodity.classification] for i in read] == [
            [c.id for c in i.commodity.classification] for i in items
        ]
        assert [i.commodity.description for i in read] == [i.commodity.description for i in items]
    assert written >= 10


# --------------------------------------------------------------------------------------------
# A hostile residue (review of issue 19): time follows the lists' lengths, not the positions
# --------------------------------------------------------------------------------------------


def test_a_residue_position_far_past_the_message_is_written_at_once() -> None:
    """A partner's protobuf may set a residue position up to 4,294,967,295: writing must not
    count up to it (it took about 16 s per 50 million positions; this one is 60 million, the
    largest would take some 20 minutes)."""
    (message,) = messages_of(sample("cusres_released.edi"))
    added = message.edifact_residue.segments.add(position=60_000_000, tag="FTX")
    for components in (["AAI"], [""], [""], ["NOTE"]):
        added.elements.add(components=components)
    started = time.monotonic()
    written = encoded(message)
    assert time.monotonic() - started < 5
    assert isinstance(written, bytes), written
    assert b"FTX+AAI+++NOTE'" in written


@pytest.mark.parametrize("field", ["segments", "suppressed", "written_shapes"])
def test_a_residue_longer_than_any_message_is_refused_before_it_is_applied(field: str) -> None:
    (message,) = messages_of(sample("cusres_released.edi"))
    kept = message.edifact_residue
    count = MAX_SEGMENTS + 1
    if field == "segments":
        kept.segments.extend([residue.EdifactSegment(position=1, tag="FTX")] * count)
    elif field == "suppressed":
        kept.suppressed.extend([1] * count)
    else:
        kept.written_shapes.extend(["FTX:"] * count)
    written = encoded(message)
    assert isinstance(written, TranslationError)
    assert written.reason == "limit-exceeded" and written.path == f"edifact_residue.{field}"


def _replaced(message: Any, shape: str, replacement: Segment) -> Any:
    """``message`` with a residue that suppresses the typed segment of ``shape`` and puts
    ``replacement`` in its place (as a hostile partner's protobuf can)."""
    index = list(message.edifact_residue.written_shapes).index(shape)
    message.edifact_residue.suppressed.append(index)
    message.edifact_residue.segments.append(residue.to_proto(replacement, index))
    return message


def test_a_residue_cannot_replace_a_typed_value_with_another() -> None:
    """The MRN the hub keyed, checked and logged is the one the domestic system reads."""
    (message,) = messages_of(sample("cusres_released.edi"))
    other = _replaced(message, "RFF:ABT", Segment("RFF", (("ABT", "24GB99999999999999"),)))
    written = encoded(other)
    assert isinstance(written, TranslationError), written
    assert written.reason == "schema-invalid" and written.path == "edifact_residue"
    assert "declaration_id" in written.message and "2499999" not in written.message


def test_a_residue_cannot_turn_a_control_result_into_a_response() -> None:
    (message,) = messages_of(sample("cusres_released.edi"))
    other = _replaced(message, "GIS:4", Segment("GIS", (("1",),)))
    written = encoded(other)
    assert isinstance(written, TranslationError), written
    assert written.reason == "schema-invalid" and "Response" in written.message


@pytest.mark.parametrize("field", ["stage", "control_type", "outcome"])
def test_an_enum_number_without_a_name_is_refused_not_a_crash(field: str) -> None:
    """proto3 enums are open: a partner's ControlResult may carry stage 99 (it raised
    KeyError or StopIteration in the writer)."""
    (message,) = messages_of(sample("cusres_released.edi"))
    setattr(message, field, 99)
    written = encoded(message)
    assert isinstance(written, TranslationError), written
    assert written.reason == "schema-invalid" and f"{field} 99" in written.message
