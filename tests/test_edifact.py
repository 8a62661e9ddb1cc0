"""The edifact format: UN/EDIFACT D.96B CUSRES and CUSDEC interchanges.

Samples in tests/data/edifact are hand-written against the D.96B directory (there are none in
the corpus); the cases below build small interchanges from segment texts so that each one
shows the segment an error must point at.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.base import Item, decode_all, encode_all
from adapters.edifact import Edifact, cusres, edifact
from adapters.edifact.directory import d96b
from adapters.edifact.syntax import control_character
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.core.messages import AeoStatus, ControlResult, GoodsDeclaration, Response
from hub.pb.customs_hub.v1 import control_pb2 as cpb
from hub.pb.customs_hub.v1 import declaration_pb2 as dpb

DATA = Path(__file__).parent / "data" / "edifact"
CLOCK = datetime(2024, 3, 1, 12, 30, tzinfo=UTC)
FORMAT = Edifact(max_bytes=XmlLimits().max_bytes, clock=lambda: CLOCK)


def sample(name: str) -> bytes:
    return (DATA / name).read_bytes()


def interchange(
    *messages: list[str],
    una: str | None = "UNA:+.? '",
    unt: dict[int, str] | None = None,
    unz: str | None = None,
    reference: str = "REF1",
    kind: str = "CUSRES",
) -> bytes:
    """An interchange, one segment per line (so segment numbers are line numbers), from the
    segments between UNH and UNT of each message. ``unt`` overrides a message's UNT."""
    lines = [una] if una else []
    lines.append(f"UNB+UNOC:3+SENDER+RECIPIENT+240301:1200+{reference}'")
    for index, body in enumerate(messages, start=1):
        lines.append(f"UNH+{index}+{kind}:D:96B:UN'")
        lines.extend(body)
        lines.append((unt or {}).get(index, f"UNT+{len(body) + 2}+{index}'"))
    lines.append(unz if unz is not None else f"UNZ+{len(messages)}+{reference}'")
    return ("\n".join(lines) + "\n").encode("latin-1")


def error_of(data: bytes, translator: Edifact = FORMAT) -> TranslationError:
    with pytest.raises(TranslationError) as caught:
        translator.decode(data)
    return caught.value


RELEASED = ["BGM+962+CTL-1+9'", "GIS+4'", "RFF+ABT:24GB0000000000001'"]


# --------------------------------------------------------------------------------------------
# The translator and its factory
# --------------------------------------------------------------------------------------------


def test_factory_takes_the_hub_size_limit_and_describes_the_format() -> None:
    translator = edifact(XmlLimits(max_bytes=1234))
    assert translator.max_bytes == 1234
    assert translator.format_id == "edifact"
    assert translator.media_type == "application/EDIFACT"
    assert translator.directions == frozenset({"decode", "encode"})
    assert translator.description and "\n" not in translator.description


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"UNA:+.? 'UNB+UNOC:3", True),
        (b"UNB+UNOC:3+A+B", True),
        (b"\xef\xbb\xbf \r\n UNB+UNOA:2", True),
        (b"\n\nUNA:+.? '", True),
        (b"UNBX", False),
        (b"<?xml version='1.0'?>", False),
        (b'{"response": {}}', False),
        (b"", False),
    ],
)
def test_sniff_recognises_interchanges(head: bytes, expected: bool) -> None:
    assert FORMAT.sniff(head) is expected


def test_the_directory_is_loaded_once_per_process() -> None:
    assert d96b() is d96b()
    directory = d96b()
    assert {"CUSRES", "CUSDEC"} <= set(directory.messages)
    assert "4" in directory.codes["7365"] and "962" in directory.codes["1001"]


# --------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------


def test_released_sample_is_a_control_result() -> None:
    result = FORMAT.decode(sample("cusres_released.edi"))
    assert isinstance(result, ControlResult)
    assert result.stage == cpb.CONTROL_STAGE_RELEASED
    assert result.control_id == "GB-CTL-2024-000117"
    assert result.declaration_id == "24GB12345678901234"
    assert result.functional_reference_id == "LRN-2024-0042"
    assert result.transport_document_id == "MAEU123456789"
    assert list(result.container_ids) == ["MSKU1234565", "TGHU7654321"]
    assert list(result.seals_applied) == ["GB-SEAL-0001"]
    assert (result.office_id, result.officer_id) == ("GB000060", "OFFICER-4711")
    assert result.controlled_at == "2024-03-01T10:15:00Z"
    assert result.control_type == cpb.CONTROL_TYPE_PHYSICAL
    assert result.outcome == cpb.CONTROL_OUTCOME_DISCREPANCY
    assert result.revision == 2
    [finding] = result.findings
    assert finding.code == "CTL01" and finding.goods_item_sequence == "1"
    # Two 4440 lines, the first shorter than 70: joined by a space; ?: ?+ ?' released.
    assert finding.description == (
        "Undeclared goods found in container MSKU1234565: 12 cartons of spare parts "
        "(HS 8708+8714), see report no. 17'B."
    )


def test_rejected_sample_is_a_response_with_errors_and_pointers() -> None:
    response = FORMAT.decode(sample("cusres_rejected.edi"))
    assert isinstance(response, Response)
    assert response.function_code == "03"
    assert response.functional_reference_id == "NOTIF-2024-0815"
    assert (response.issue_date_time.value, response.issue_date_time.format_code) == (
        "20240301093000Z",
        "304",
    )
    assert [office.id for office in response.contact_office] == ["GB000060"]
    assert response.declaration.functional_reference_id == "LRN-2024-0043"
    first, second = response.error
    assert first.validation_code == "CDS12005"
    assert first.description.endswith("for the declared procedure?")
    assert [(p.document_section_code, p.sequence_numeric, p.tag_id) for p in first.pointer] == [
        ("42A", "1", "D01"),
        ("67A", "1", "137"),
    ]
    assert second.validation_code == "CDS10020" and not second.pointer


def test_cusdec_sample_is_a_goods_declaration() -> None:
    declaration = FORMAT.decode(sample("cusdec_import.edi"))
    assert isinstance(declaration, GoodsDeclaration)
    assert (declaration.type_code, declaration.function_code) == ("929", "9")
    assert declaration.functional_reference_id == "LRN-NL-2024-00017"
    assert declaration.declaration_office_id == "NL000396"
    assert declaration.issue_location_id == "NLRTM"
    # DTM+137:20240228164200:204, taken as UTC: WCO formatCode 304 with Z
    assert (declaration.issue_date_time.value, declaration.issue_date_time.format_code) == (
        "20240228164200Z",
        "304",
    )
    total = declaration.total_gross_mass_measure
    assert (total.value, total.unit_code) == ("1250.5", "KGM")
    assert (declaration.invoice_amount.value, declaration.invoice_amount.currency_id) == (
        "15000.00",
        "EUR",
    )
    assert declaration.exporter.id == "GB123456789000"
    assert declaration.exporter.name == "ACME EXPORTS LTD"
    assert declaration.exporter.address.postcode_id == "IP11 3AB"
    assert declaration.declarant.id == "NL555444333"
    shipment = declaration.goods_shipment
    assert shipment.importer.name == "Van Dijk & Zonen B.V."
    assert shipment.importer.address.country_code == "NL"
    assert shipment.ucr.id == "4NL123456789-2024-17"
    first, second = shipment.government_agency_goods_item
    assert first.sequence_numeric == "1" and second.sequence_numeric == "2"
    assert first.commodity.description == "Spare parts for motor vehicles: brake pads"
    assert [c.id for c in first.commodity.classification] == ["87089997"]
    assert first.origin[0].country_code == "DE"
    assert first.commodity.goods_measure.gross_mass_measure.value == "800"
    # A decimal comma is read as a point.
    assert first.commodity.goods_measure.net_net_weight_measure.value == "760.5"
    assert first.customs_value_amount.value == "9500.00"
    assert first.statistical_value_amount.value == "9600.00"
    assert first.packaging[0].quantity_quantity.value == "40"
    assert first.packaging[0].type_code == "CT"
    assert second.commodity.description == "Rubber gaskets"


@pytest.mark.parametrize("name", ["cusres_released.edi", "cusres_rejected.edi"])
def test_samples_are_stable_through_decode_encode_decode(name: str) -> None:
    first = FORMAT.decode(sample(name))
    written = FORMAT.encode(first)
    again = FORMAT.decode(written)
    assert again == first
    assert FORMAT.encode(again) == written  # and the bytes are stable too


def test_aeo_statuses_are_not_written() -> None:
    # Goods declarations are written as CUSDEC since issue 19 (tests/test_edifact_lossless.py).
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(AeoStatus(aeo_id="GBAEOC0001", issuing_administration="GB"))
    assert caught.value.reason == "unsupported-document"


# --------------------------------------------------------------------------------------------
# Round trips
# --------------------------------------------------------------------------------------------

CONTROL_RESULTS = {
    "released-full": ControlResult(
        control_id="GB/CTL/1",
        declaration_id="24GB12345678901234",
        functional_reference_id="LRN-1",
        transport_document_id="MAEU1",
        container_ids=["MSKU1234565", "TGHU7654321"],
        control_type=cpb.CONTROL_TYPE_NON_INTRUSIVE,
        outcome=cpb.CONTROL_OUTCOME_NO_FINDINGS,
        seals_applied=["S1", "S2"],
        officer_id="OFF-1",
        office_id="GB000060",
        controlled_at="2024-03-01T10:15:00Z",
        revision=202403011015004,
        stage=cpb.CONTROL_STAGE_RELEASED,
        notification_function_code="08",
        control_result_code="A1",
    ),
    "intended": ControlResult(control_id="C2", stage=cpb.CONTROL_STAGE_INTENDED),
    "documents": ControlResult(stage=cpb.CONTROL_STAGE_DOCUMENTS_REQUIRED, officer_id="O"),
    "detained-seizure": ControlResult(
        control_id="C3",
        stage=cpb.CONTROL_STAGE_DETAINED,
        outcome=cpb.CONTROL_OUTCOME_SEIZURE,
        control_type=cpb.CONTROL_TYPE_SAMPLING,
        findings=[
            cpb.Finding(code="F1", description="x" * 400, goods_item_sequence="3"),
            cpb.Finding(code="F2"),
            cpb.Finding(description="release characters ?+:' and ?? stay as written"),
        ],
    ),
    "completed": ControlResult(
        stage=cpb.CONTROL_STAGE_COMPLETED, control_type=cpb.CONTROL_TYPE_DOCUMENTARY
    ),
    "cleared": ControlResult(stage=cpb.CONTROL_STAGE_CLEARED, office_id="NL000396"),
}


@pytest.mark.parametrize("name", sorted(CONTROL_RESULTS))
def test_control_results_round_trip(name: str) -> None:
    result = CONTROL_RESULTS[name]
    decoded = FORMAT.decode(FORMAT.encode(result))
    assert isinstance(decoded, ControlResult)
    assert decoded == result


def test_control_time_is_written_in_utc() -> None:
    result = ControlResult(
        stage=cpb.CONTROL_STAGE_RELEASED, controlled_at="2024-03-01T11:15:00+01:00"
    )
    decoded = FORMAT.decode(FORMAT.encode(result))
    assert decoded.controlled_at == "2024-03-01T10:15:00Z"  # type: ignore[attr-defined]


def _response(**fields: object) -> Response:
    return Response(**fields)  # type: ignore[arg-type]


RESPONSES = {
    "accepted": _response(
        function_code="01",
        functional_reference_id="N-1",
        issue_date_time=dpb.DateTimeString(value="20240301093000Z", format_code="304"),
    ),
    "received": _response(function_code="02"),
    "rejected-with-errors": _response(
        function_code="03",
        error=[
            {
                "validation_code": "CDS12005",
                "description": "commodity code ?+: not valid" * 20,
                "pointer": [
                    {"document_section_code": "42A"},
                    {"document_section_code": "67A", "sequence_numeric": "2", "tag_id": "D005"},
                ],
            },
            {"description": "no code"},
        ],
        declaration={
            "id": "24GB12345678901234",
            "version_id": "2",
            "functional_reference_id": "LRN-9",
            "acceptance_date_time": {"value": "20240301", "format_code": "102"},
        },
    ),
    "incomplete": _response(function_code="04", contact_office=[{"id": "GB1"}, {"id": "GB2"}]),
    "tax-mutually-defined": _response(function_code="13"),
    "control-notification-as-response": _response(function_code="05"),
    "status-only": _response(status=[{"name_code": "66"}, {"name_code": "9"}]),
    "empty": _response(),
}


@pytest.mark.parametrize("name", sorted(RESPONSES))
def test_responses_round_trip(name: str) -> None:
    response = RESPONSES[name]
    decoded = FORMAT.decode(FORMAT.encode(response))
    assert isinstance(decoded, Response)
    assert decoded == response


@pytest.mark.parametrize(
    ("edifact_value", "edifact_form", "wco"),
    [
        ("20240228164200", "204", ("20240228164200Z", "304")),  # EDIFACT times are UTC
        ("202402281642", "203", ("20240228164200Z", "304")),
        ("20240228164200Z", "304", ("20240228164200Z", "304")),
        ("20240228164200UTC", "304", ("20240228164200Z", "304")),
        ("20240228", "102", ("20240228", "102")),
        ("20240228164200+01", "304", ("20240228164200+01", "304")),  # not UTC: verbatim
        ("2024", "102", ("2024", "102")),  # malformed: verbatim
    ],
)
def test_dates_are_read_as_wco_format_codes(
    edifact_value: str, edifact_form: str, wco: tuple[str, str]
) -> None:
    assert cusres.wco_date(edifact_value, edifact_form) == wco
    # written back: a UTC 304 as 204, everything else verbatim; reading that gives wco again
    written = cusres.edifact_date(*wco)
    assert written == ((wco[0][:14], "204") if wco[0].endswith("Z") else wco)
    assert cusres.wco_date(*written) == wco


def test_a_cusdec_time_reads_as_a_wco_304_and_a_response_writes_it_as_204() -> None:
    cusdec = FORMAT.decode(sample("cusdec_import.edi"))
    assert isinstance(cusdec, GoodsDeclaration)
    response = _response(function_code="01", issue_date_time=cusdec.issue_date_time)
    data = FORMAT.encode(response)
    assert b"DTM+137:20240228164200:204'" in data
    assert FORMAT.decode(data) == response
    edited = sample("cusres_rejected.edi").replace(
        b"DTM+137:20240301093000Z:304'", b"DTM+137:20240301093000:204'"
    )
    rejected = FORMAT.decode(edited)
    assert isinstance(rejected, Response)
    assert (rejected.issue_date_time.value, rejected.issue_date_time.format_code) == (
        "20240301093000Z",
        "304",
    )


def test_further_responses_become_messages_of_their_own() -> None:
    response = _response(function_code="01", further_responses=[{"function_code": "02"}])
    items = FORMAT.decode_all(FORMAT.encode(response))
    assert [item.message for item in items] == [
        _response(function_code="01"),
        _response(function_code="02"),
    ]
    with pytest.raises(TranslationError) as caught:
        FORMAT.decode(FORMAT.encode(response))
    assert caught.value.reason == "unsupported-document" and "2 messages" in caught.value.message


def test_encode_all_writes_one_interchange_read_back_in_order() -> None:
    messages = [CONTROL_RESULTS["intended"], RESPONSES["accepted"], CONTROL_RESULTS["cleared"]]
    data = encode_all(FORMAT, messages)
    assert data.count(b"UNB+") == 1 and data.count(b"UNH+") == 3
    assert b"UNZ+3+" in data
    items = decode_all(FORMAT, data)
    assert [item.message for item in items] == messages
    assert all(item.error is None for item in items)


def test_encoding_is_deterministic_and_names_the_hub() -> None:
    first = FORMAT.encode(CONTROL_RESULTS["released-full"])
    assert first == FORMAT.encode(CONTROL_RESULTS["released-full"])
    assert first.startswith(b"UNA:+.? '\nUNB+UNOC:3+CUSTOMS-HUB+PARTNER+240301:1230+")


def test_text_outside_latin_1_is_written_as_utf_8() -> None:
    result = ControlResult(
        stage=cpb.CONTROL_STAGE_DETAINED, findings=[cpb.Finding(description="Груз задержан €")]
    )
    data = FORMAT.encode(result)
    assert b"UNB+UNOW:4+" in data and b"+20240301:1230+" in data
    assert FORMAT.decode(data) == result
    latin = ControlResult(
        stage=cpb.CONTROL_STAGE_DETAINED, findings=[cpb.Finding(description="Zoll äöü")]
    )
    assert b"UNB+UNOC:3+" in FORMAT.encode(latin)
    assert FORMAT.decode(FORMAT.encode(latin)) == latin


# --------------------------------------------------------------------------------------------
# GIS processing indicators
# --------------------------------------------------------------------------------------------

# (GIS segment, kind, stage or function code)
GIS_TABLE = [
    ("GIS+4'", "control", cpb.CONTROL_STAGE_RELEASED),
    ("GIS+5'", "control", cpb.CONTROL_STAGE_INTENDED),
    ("GIS+6'", "control", cpb.CONTROL_STAGE_DOCUMENTS_REQUIRED),
    ("GIS+7'", "control", cpb.CONTROL_STAGE_DETAINED),
    ("GIS+ZZZ:::COMPLETED'", "control", cpb.CONTROL_STAGE_COMPLETED),
    ("GIS+ZZZ:::CLEARED'", "control", cpb.CONTROL_STAGE_CLEARED),
    ("GIS+1'", "response", "01"),
    ("GIS+17'", "response", "02"),
    ("GIS+2'", "response", "03"),
    ("GIS+3'", "response", "03"),
    ("GIS+30'", "response", "04"),
    ("GIS+ZZZ:::13'", "response", "13"),
]


@pytest.mark.parametrize(("gis", "kind", "expected"), GIS_TABLE)
def test_gis_processing_indicator_table(gis: str, kind: str, expected: object) -> None:
    message = FORMAT.decode(interchange(["BGM+962+X+9'", gis]))
    if kind == "control":
        assert isinstance(message, ControlResult) and message.stage == expected
    else:
        assert isinstance(message, Response) and message.function_code == expected
        assert not message.status


def test_unmapped_processing_indicators_are_kept_as_status_codes() -> None:
    message = FORMAT.decode(interchange(["BGM+961+X+9'", "GIS+1'", "GIS+66'"]))
    assert isinstance(message, Response)
    assert message.function_code == "01"
    assert [status.name_code for status in message.status] == ["66"]


def test_two_control_stages_are_refused_at_the_second() -> None:
    error = error_of(interchange(["BGM+962+X+9'", "GIS+4'", "GIS+7'"]))
    assert (error.reason, error.line, error.path) == ("schema-invalid", 6, "GIS")


def test_a_processing_indicator_outside_the_code_list_is_an_edifact_code_error() -> None:
    error = error_of(interchange(["BGM+962+X+9'", "GIS+99'"]))
    assert (error.reason, error.line, error.path) == ("edifact-code", 5, "GIS")
    assert "7365" in error.message and "'99'" in error.message


@pytest.mark.parametrize(
    ("result", "fragment"),
    [
        (ControlResult(), "needs a stage"),
        (ControlResult(stage=cpb.CONTROL_STAGE_RELEASED, controlled_at="yesterday"), "RFC 3339"),
    ],
)
def test_control_results_that_cannot_be_written(result: ControlResult, fragment: str) -> None:
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(result)
    assert caught.value.reason == "schema-invalid" and fragment in caught.value.message


@pytest.mark.parametrize(
    "response",
    [
        _response(function_code="CLEARED"),
        _response(status=[{"name_code": "4"}]),
        _response(status=[{"name_code": "1"}]),
    ],
)
def test_responses_that_would_read_back_otherwise_are_refused(response: Response) -> None:
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(response)
    assert caught.value.reason == "schema-invalid"


def test_values_too_long_for_the_directory_are_refused_when_writing() -> None:
    result = ControlResult(stage=cpb.CONTROL_STAGE_RELEASED, declaration_id="M" * 36)
    with pytest.raises(TranslationError) as caught:
        FORMAT.encode(result)
    error = caught.value
    assert (error.reason, error.path) == ("schema-invalid", "SG3/RFF")
    assert "1154" in error.message and "35" in error.message and "M" * 20 not in error.message


# --------------------------------------------------------------------------------------------
# Release characters and separators
# --------------------------------------------------------------------------------------------


def test_release_characters_are_read() -> None:
    data = interchange(
        ["BGM+962+X+9'", "GIS+7'", "ERP+1'", "FTX+AAO+++plus ?+ colon ?: apostrophe ?' query ??'"]
    )
    message = FORMAT.decode(data)
    assert message.findings[0].description == "plus + colon : apostrophe ' query ?"  # type: ignore[attr-defined]


def test_release_characters_are_written() -> None:
    result = ControlResult(
        stage=cpb.CONTROL_STAGE_DETAINED, findings=[cpb.Finding(description="a+b:c'd?e")]
    )
    data = FORMAT.encode(result)
    assert b"FTX+AAO+++a?+b?:c?'d??e'" in data
    assert FORMAT.decode(data) == result


def test_non_default_separators_from_una() -> None:
    # component ^, data |, decimal ",", release \, terminator ~
    text = (
        "UNA^|,\\ ~\n"
        "UNB|UNOC^3|S|R|240301^1200|R1~\n"
        "UNH|1|CUSRES^D^96B^UN~\n"
        "BGM|962|X|9~\n"
        "GIS|7~\n"
        "ERP|2^4~\n"
        "FTX|AAO|||pipe \\| tilde \\~ caret \\^ backslash \\\\ plus + quote '~\n"
        "UNT|6|1~\n"
        "UNZ|1|R1~\n"
    )
    message = FORMAT.decode(text.encode())
    assert isinstance(message, ControlResult)
    assert message.findings[0].goods_item_sequence == "4"
    assert message.findings[0].description == "pipe | tilde ~ caret ^ backslash \\ plus + quote '"


def test_una_without_release_character_takes_question_marks_literally() -> None:
    data = interchange(["BGM+962+X+9'", "GIS+7'", "ERP+1'", "FTX+AAO+++why?'"], una="UNA:+.  '")
    assert FORMAT.decode(data).findings[0].description == "why?"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------
# Syntax and service segment errors: (name, interchange, line, path, fragment)
# --------------------------------------------------------------------------------------------

GOOD = interchange(RELEASED)
SYNTAX_ERRORS = [
    ("una-too-short", b"UNA:+.", 1, "UNA", "six service characters"),
    ("una-same-character-twice", b"UNA:+.: 'UNB+UNOC:3+A+B+240301:1200+R'", 1, "UNA", "two roles"),
    ("una-letter-separator", b"UNA:X.? 'UNB", 1, "UNA", "punctuation"),
    ("una-bad-decimal", b"UNA:+;? 'UNB+UNOC:3", 1, "UNA", "decimal mark"),
    ("no-unb", b"UNA:+.? '\nUNH+1+CUSRES:D:96B:UN'", 2, "UNB", "starts with UNB"),
    ("unknown-charset", GOOD.replace(b"UNOC", b"UNOQ"), 2, "UNB", "syntax identifier"),
    ("bad-syntax-version", GOOD.replace(b"UNOC:3", b"UNOC:7"), 2, "UNB", "0002"),
    ("unb-date", GOOD.replace(b"240301:1200", b"2403:1200"), 2, "UNB", "S004"),
    ("unb-without-recipient", GOOD.replace(b"+RECIPIENT", b"+"), 2, "UNB", "S003"),
    ("unz-reference", interchange(RELEASED, unz="UNZ+1+OTHER'"), 8, "UNZ", "differs from UNB"),
    ("unz-count", interchange(RELEASED, unz="UNZ+2+REF1'"), 8, "UNZ", "holds 1 message"),
    ("no-unz", GOOD.replace(b"UNZ+1+REF1'\n", b""), 7, "UNZ", "must end with UNZ"),
    ("unterminated", GOOD.rstrip(b"'\n"), 8, "UNZ", "without its segment terminator"),
    ("release-at-end", GOOD.rstrip(b"'\n") + b"?", 8, "UNZ", "without its segment terminator"),
    ("release-before-newline", GOOD.replace(b"9'", b"9?\n'"), 4, "BGM", "followed by a line break"),
    (
        "message-without-unt",
        GOOD.replace(b"UNT+5+1'\n", b""),
        7,
        "UNT",
        "not ended by UNT",
    ),
    (
        "unh-inside-message",
        interchange(["BGM+962+X+9'", "UNH+2+CUSRES:D:96B:UN'", "GIS+4'"]),
        5,
        "UNH",
        "before the message",
    ),
    ("segment-outside-message", GOOD.replace(b"UNZ", b"FTX+AAI'\nUNZ"), 8, "FTX", "outside"),
    ("functional-group", GOOD.replace(b"UNH+1", b"UNG+X'\nUNH+1"), 3, "UNG", "functional groups"),
    (
        "second-unb",
        GOOD.replace(b"UNZ", b"UNB+UNOC:3+A+B+240301:1200+R'\nUNZ"),
        8,
        "UNB",
        "one interchange",
    ),
    ("empty-segment", GOOD.replace(b"GIS+4'", b"GIS+4''"), 6, None, "empty segment"),
    ("lower-case-tag", GOOD.replace(b"GIS+4'", b"gis+4'"), 5, "gis", "three capital letters"),
    ("long-tag", GOOD.replace(b"GIS+4'", b"GISX+4'"), 5, "GIS", "three capital letters"),
    ("component-after-tag", GOOD.replace(b"GIS+4'", b"GIS:4'"), 5, "GIS", "right after the tag"),
    (
        "invalid-ascii",
        GOOD.replace(b"UNOC", b"UNOA").replace(b"CTL-1", b"CTL-\xe9"),
        4,
        None,
        "UNOA",
    ),
    (
        "invalid-utf-8",
        GOOD.replace(b"UNOC:3", b"UNOW:4").replace(b"CTL-1", b"CTL-\xff"),
        4,
        None,
        "UNOW",
    ),
    ("control-character", GOOD.replace(b"CTL-1", b"CTL\x01"), 4, None, "control character"),
]


@pytest.mark.parametrize(
    ("data", "line", "path", "fragment"),
    [case[1:] for case in SYNTAX_ERRORS],
    ids=[case[0] for case in SYNTAX_ERRORS],
)
def test_syntax_errors_name_segment_and_tag(
    data: bytes, line: int, path: str | None, fragment: str
) -> None:
    with pytest.raises(TranslationError) as caught:
        FORMAT.decode_all(data)  # the whole interchange is refused
    error = caught.value
    assert (error.reason, error.line, error.path) == ("edifact-syntax", line, path)
    assert fragment in error.message
    assert f"segment {line}" in error.message or line == 1


def test_the_good_interchange_the_syntax_cases_start_from_decodes() -> None:
    assert FORMAT.decode(GOOD).stage == cpb.CONTROL_STAGE_RELEASED  # type: ignore[attr-defined]


def test_segments_are_numbered_without_una_too() -> None:
    data = interchange(["BGM+962+X+9'", "GIS+99'"], una=None)
    error = error_of(data)
    assert (error.line, error.path) == (4, "GIS")


@pytest.mark.parametrize(
    ("unt", "fragment"),
    [("UNT+9+1'", "says '9'; the message has 5 segments"), ("UNT+5+7'", "differs from UNH")],
)
def test_unt_errors_refuse_only_their_message(unt: str, fragment: str) -> None:
    items = FORMAT.decode_all(interchange(RELEASED, RELEASED, unt={1: unt}))
    bad, good = items
    assert bad.message is None and bad.error is not None and bad.line == 3
    assert (bad.error.reason, bad.error.line, bad.error.path) == ("edifact-syntax", 7, "UNT")
    assert fragment in bad.error.message
    assert good.error is None and isinstance(good.message, ControlResult) and good.line == 8


# --------------------------------------------------------------------------------------------
# Structure against the D.96B directory: (name, body, line, path, reason, fragment)
# --------------------------------------------------------------------------------------------

STRUCTURE_ERRORS = [
    (
        "missing-bgm",
        ["DTM+137:20240301:102'", "GIS+4'"],
        4,
        "BGM",
        "edifact-structure",
        "mandatory segment BGM",
    ),
    (
        "too-many-gis",
        ["BGM+962+X+9'"] + ["GIS+66'"] * 10 + ["GIS+4'"],
        15,
        "GIS",
        "edifact-structure",
        "more than the 10",
    ),
    (
        "too-many-in-group",
        ["BGM+962+X+9'", "GIS+7'", "ERP+1'"] + ["RFF+ZZZ:1'"] * 10,
        16,
        "SG4/RFF",
        "edifact-structure",
        "more than the 9",
    ),
    (
        "unknown-segment",
        ["BGM+962+X+9'", "XYZ+1'", "GIS+4'"],
        5,
        "XYZ",
        "edifact-structure",
        "not a segment of CUSRES",
    ),
    (
        "out-of-order",
        ["BGM+962+X+9'", "RFF+ABT:M'", "GIS+4'"],
        6,
        "GIS",
        "edifact-structure",
        "out of place",
    ),
    (
        "cusdec-segment-in-cusres",
        ["BGM+962+X+9'", "GIS+4'", "UNS+D'"],
        6,
        "UNS",
        "edifact-structure",
        "not a segment of CUSRES",
    ),
    (
        "too-many-elements",
        ["BGM+962+X+9+AP+EXTRA'", "GIS+4'"],
        4,
        "BGM",
        "edifact-structure",
        "at most 4",
    ),
    (
        "simple-with-components",
        ["BGM+962+X+9:1'", "GIS+4'"],
        4,
        "BGM",
        "edifact-structure",
        "1225 is simple",
    ),
    (
        "too-many-components",
        ["BGM+962:1:2:3:4+X+9'", "GIS+4'"],
        4,
        "BGM",
        "edifact-structure",
        "at most 4 components",
    ),
    (
        "mandatory-element",
        ["BGM+962+X+9'", "GIS+4'", "RFF+:M'"],
        6,
        "SG3/RFF",
        "edifact-structure",
        "C506/1153 is missing",
    ),
    (
        "mandatory-composite",
        ["BGM+962+X+9'", "GIS'"],
        5,
        "GIS",
        "edifact-structure",
        "C529 is missing",
    ),
    (
        "too-long",
        ["BGM+962+" + "X" * 36 + "+9'", "GIS+4'"],
        4,
        "BGM",
        "edifact-structure",
        "C106/1004 is at most 35",
    ),
    (
        "not-numeric",
        ["BGM+962+X+9'", "GIS+7'", "CNT+1:ten'"],
        6,
        "CNT",
        "edifact-structure",
        "numeric",
    ),
    ("bad-document-code", ["BGM+ABC+X+9'", "GIS+4'"], 4, "BGM", "edifact-code", "C002/1001"),
    (
        "bad-reference-qualifier",
        ["BGM+962+X+9'", "GIS+4'", "RFF+QQQ:1'"],
        6,
        "SG3/RFF",
        "edifact-code",
        "1153",
    ),
    (
        "bad-control-type",
        ["BGM+962+X+9'", "FTX+AAH++LOUD:CTY:ZZZ'", "GIS+4'"],
        5,
        "FTX",
        "schema-invalid",
        "control type",
    ),
    (
        "bad-control-date",
        ["BGM+962+X+9'", "DTM+137:2024:102'", "GIS+4'"],
        5,
        "DTM",
        "schema-invalid",
        "control time",
    ),
    (
        "two-mrns",
        ["BGM+962+X+9'", "GIS+4'", "RFF+ABT:A'", "RFF+ABT:B'"],
        7,
        "SG3/RFF",
        "schema-invalid",
        "a second ABT",
    ),
]


@pytest.mark.parametrize(
    ("body", "line", "path", "reason", "fragment"),
    [case[1:] for case in STRUCTURE_ERRORS],
    ids=[case[0] for case in STRUCTURE_ERRORS],
)
def test_structure_errors_name_segment_and_tag(
    body: list[str], line: int, path: str, reason: str, fragment: str
) -> None:
    [item] = FORMAT.decode_all(interchange(body))
    assert item.message is None and item.error is not None and item.line == 3
    error = item.error
    assert (error.reason, error.line, error.path) == (reason, line, path), error.message
    assert fragment in error.message and f"segment {line}" in error.message


def test_cusdec_structure_needs_its_two_uns() -> None:
    body = ["BGM+929+LRN+9'", "UNS+D'", "CST+1+87089997'"]
    [item] = FORMAT.decode_all(interchange(body, kind="CUSDEC"))
    assert item.error is not None
    assert (item.error.reason, item.error.path) == ("edifact-structure", "UNS")


@pytest.mark.parametrize(
    ("unh", "fragment"),
    [("UNH+1+CUSCAR:D:96B:UN'", "CUSCAR"), ("UNH+1+CUSRES:D:01B:UN'", "D:01B:UN")],
)
def test_other_messages_and_directories_are_unsupported(unh: str, fragment: str) -> None:
    data = GOOD.replace(b"UNH+1+CUSRES:D:96B:UN'", unh.encode())
    [item] = FORMAT.decode_all(data)
    assert item.error is not None
    assert (item.error.reason, item.error.line, item.error.path) == (
        "unsupported-document",
        3,
        "UNH",
    )
    assert fragment in item.error.message


# --------------------------------------------------------------------------------------------
# Several messages
# --------------------------------------------------------------------------------------------


def test_decode_all_reports_the_bad_message_and_decodes_the_others() -> None:
    bad = ["BGM+962+X+9'", "GIS+4'", "XYZ+1'"]
    data = interchange(RELEASED, bad, ["BGM+961+N+9'", "GIS+1'"])
    items = decode_all(FORMAT, data)
    assert [item.line for item in items] == [3, 8, 13]
    first, second, third = items
    assert isinstance(first.message, ControlResult) and first.error is None
    assert second.message is None and second.error is not None
    assert (second.error.reason, second.error.line, second.error.path) == (
        "edifact-structure",
        11,
        "XYZ",
    )
    assert isinstance(third.message, Response) and third.message.function_code == "01"
    assert all(isinstance(item, Item) for item in items)


def test_decode_takes_exactly_one_message() -> None:
    error = error_of(interchange(RELEASED, RELEASED))
    assert error.reason == "unsupported-document" and "2 messages" in error.message
    empty = error_of(interchange())
    assert empty.reason == "unsupported-document" and "0 messages" in empty.message


def test_decode_raises_the_error_of_its_one_bad_message() -> None:
    error = error_of(interchange(["BGM+962+X+9'", "GIS+99'"]))
    assert (error.reason, error.line) == ("edifact-code", 5)


# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------


def test_size_limit_is_enforced_before_reading() -> None:
    small = Edifact(max_bytes=len(GOOD) - 1)
    error = error_of(GOOD, small)
    assert error.reason == "limit-exceeded" and str(len(GOOD)) in error.message
    assert Edifact(max_bytes=len(GOOD)).decode(GOOD) is not None


def test_segment_limit_is_enforced() -> None:
    few = Edifact(max_bytes=10_000, max_segments=5)
    error = error_of(GOOD, few)
    assert (error.reason, error.line) == ("limit-exceeded", 7)
    assert Edifact(max_bytes=10_000, max_segments=7).decode(GOOD) is not None


# --------------------------------------------------------------------------------------------
# Fuzz: any bytes give messages or TranslationError, never another exception
# --------------------------------------------------------------------------------------------

SEEDS = [sample("cusres_released.edi"), sample("cusres_rejected.edi"), sample("cusdec_import.edi")]


def _decode_any(data: bytes) -> None:
    try:
        items = FORMAT.decode_all(data)
    except TranslationError:
        return
    for item in items:
        assert (item.message is None) != (item.error is None)
        if item.error is not None:
            assert isinstance(item.error, TranslationError)
            assert item.error.reason in {
                "edifact-syntax",
                "edifact-structure",
                "edifact-code",
                "schema-invalid",
                "unsupported-document",
            }


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_fuzz_random_bytes(data: bytes) -> None:
    _decode_any(data)
    _decode_any(b"UNA:+.? 'UNB+UNOC:3+A+B+240301:1200+R'" + data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=2000), st.binary(min_size=0, max_size=3)),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),
)
def test_fuzz_mutated_samples(seed: bytes, edits: list[tuple[int, bytes]], insert: bool) -> None:
    data = bytearray(seed)
    for position, replacement in edits:
        at = position % (len(data) + 1)
        data[at : at if insert else at + len(replacement)] = replacement
    _decode_any(bytes(data))


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300), st.sampled_from(sorted(cpb.ControlStage.values())[1:]))
def test_fuzz_any_text_round_trips(text: str, stage: int) -> None:
    result = ControlResult(stage=stage, findings=[cpb.Finding(code="F", description=text)])  # type: ignore[arg-type]
    if control_character(text):
        # EDIFACT text never holds C0 control characters: refused, not written.
        with pytest.raises(TranslationError) as caught:
            FORMAT.encode(result)
        assert caught.value.reason == "schema-invalid"
        return
    decoded = FORMAT.decode(FORMAT.encode(result))
    assert isinstance(decoded, ControlResult)
    assert decoded.findings[0].description == text


def test_two_response_processing_indicators_are_refused_at_the_second() -> None:
    error = error_of(interchange(["BGM+961+X+9'", "GIS+1'", "GIS+17'"]))
    assert (error.reason, error.line, error.path) == ("schema-invalid", 6, "GIS")


def test_a_second_party_of_one_role_is_refused() -> None:
    body = ["BGM+929+LRN+9'", "NAD+EX+A'", "NAD+EX+B'", "UNS+D'", "UNS+S'"]
    [item] = FORMAT.decode_all(interchange(body, kind="CUSDEC"))
    assert item.error is not None
    assert (item.error.reason, item.error.line, item.error.path) == ("schema-invalid", 6, "NAD")


def test_a_minimal_cusdec_has_only_its_heading() -> None:
    body = ["BGM+929+LRN-1+9'", "UNS+D'", "UNS+S'"]
    declaration = FORMAT.decode(interchange(body, kind="CUSDEC"))
    assert declaration == GoodsDeclaration(
        type_code="929", functional_reference_id="LRN-1", function_code="9"
    )
