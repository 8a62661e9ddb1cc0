"""CUSRES (Customs response, D.96B) to and from ``ControlResult`` and ``Response``.

Which one a CUSRES is: a message whose heading GIS carries a control-stage processing
indicator (7365 4, 5, 6 or 7, or the mutually defined ZZZ with process type COMPLETED or
CLEARED) is a ControlResult; any other CUSRES is a Response. The writers keep to that rule,
so that writing and reading back gives the same message (docs/formats/edifact.md has the
tables). Pure: a checked group tree in, a message out, and segments out of a message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from adapters.edifact.directory import Group
from adapters.edifact.syntax import Segment, digits, quoted, segment
from hub.core.codelists import NO_CODE_LISTS, UN_AGENCY, CodeLists
from hub.core.errors import TranslationError
from hub.pb.customs_hub.v1 import control_pb2, response_pb2

ControlResult = control_pb2.ControlResult
Response = response_pb2.Response
INVALID = "schema-invalid"

# BGM C002 1001 document name codes written (any 1001 code is read).
DOCUMENT_CONTROL = "962"  # Document response (Customs)
DOCUMENT_GENERAL = "961"  # General response (Customs)
DOCUMENT_ERROR = "963"  # Error response (Customs)
MESSAGE_ORIGINAL = "9"  # BGM 1225 message function: original
MUTUALLY_DEFINED = "ZZZ"  # 7365 / 3055 "mutually defined"

PROCESSING_INDICATOR = "7365"  # GIS C529's coded element, which partner lists may govern
# GIS 7365 processing indicator -> control stage (a ControlResult).
STAGE_INDICATORS = {
    "4": control_pb2.CONTROL_STAGE_RELEASED,  # Goods released
    "5": control_pb2.CONTROL_STAGE_INTENDED,  # Goods required for examination
    "6": control_pb2.CONTROL_STAGE_DOCUMENTS_REQUIRED,  # All documents ... to be produced
    "7": control_pb2.CONTROL_STAGE_DETAINED,  # Goods detained
}
# Stages 7365 has no code for: GIS+ZZZ:::<name> (7187 process type identification).
HUB_STAGES = {
    "COMPLETED": control_pb2.CONTROL_STAGE_COMPLETED,
    "CLEARED": control_pb2.CONTROL_STAGE_CLEARED,
}
STAGE_WRITE = {stage: code for code, stage in STAGE_INDICATORS.items()}
# GIS 7365 -> Response.function_code (RES-DMS notification type).
RESPONSE_INDICATORS = {
    "1": "01",  # Message content accepted -> DMSACC
    "17": "02",  # Message received -> DMSRCV
    "2": "03",  # Message content rejected with comment -> DMSREJ
    "3": "03",  # Message content rejected without comment -> DMSREJ
    "30": "04",  # Will not be processed until action is taken by sender -> DMSINC
}
RESPONSE_WRITE = {"01": "1", "02": "17", "03": "2", "04": "30"}

# References (SG3 RFF C506 1153).
REF_MRN = "ABT"  # Customs declaration number
REF_LRN = "ABE"  # Declarant's reference number
REF_TRANSPORT = "AAS"  # Transport document number
REF_SEAL = "SN"  # Seal number
REF_REVISION = "FV"  # File version number
REF_POINTER = "ZZZ"  # Mutually defined: a WCO pointer in SG4
PARTY_CUSTOMS = "CM"  # NAD 3035 Customs
CONTACT_INFORMATION = "IC"  # CTA 3139 Information contact
DATE_DOCUMENT = "137"  # DTM 2005 Document/message date/time
DATE_ACCEPTANCE = "148"  # Acceptance date of Goods declaration (Customs)
CONTROL_DATES = ("137", "351", "204")  # read for controlled_at, in this order of preference
TEXT_CUSTOMS = "AAH"  # FTX 4451 Customs information (hub-coded facts, see below)
TEXT_ERROR = "AAO"  # FTX 4451 Error description (free text)
EQUIPMENT_CONTAINER = "CN"
SECTION_HEADING, SECTION_DETAIL = "1", "2"  # ERP 1049

# Facts without a D.96B code, written as coded text FTX+AAH++<code>:<list>:ZZZ, the list
# named by 1131 and the agency 3055 ZZZ (mutually defined).
LIST_CONTROL_TYPE = "CTY"
LIST_OUTCOME = "OUT"
LIST_RESULT_CODE = "AFB"  # CDS control result code (A1, A2, B1)
LIST_FUNCTION = "RES"  # RES-DMS notification function code the result was read from
CONTROL_TYPES = {
    "DOCUMENTARY": control_pb2.CONTROL_TYPE_DOCUMENTARY,
    "PHYSICAL": control_pb2.CONTROL_TYPE_PHYSICAL,
    "NON_INTRUSIVE": control_pb2.CONTROL_TYPE_NON_INTRUSIVE,
    "SAMPLING": control_pb2.CONTROL_TYPE_SAMPLING,
}
OUTCOMES = {
    "NO_FINDINGS": control_pb2.CONTROL_OUTCOME_NO_FINDINGS,
    "DISCREPANCY": control_pb2.CONTROL_OUTCOME_DISCREPANCY,
    "SEIZURE": control_pb2.CONTROL_OUTCOME_SEIZURE,
}
FTX_WIDTH, FTX_LINES = 70, 5  # C108: five 4440 of an..70


def _invalid(seg: Segment, path: str, what: str) -> TranslationError:
    return TranslationError(f"{seg.where()}: {what}", reason=INVALID, line=seg.number, path=path)


# --------------------------------------------------------------------------------------------
# Free text
# --------------------------------------------------------------------------------------------


def text_lines(text: str, width: int = FTX_WIDTH) -> list[str]:
    """``text`` cut into full lines of ``width`` (the last shorter)."""
    return [text[i : i + width] for i in range(0, len(text), width)]


def join_lines(lines: list[str], width: int = FTX_WIDTH) -> str:
    """The inverse of ``text_lines``: a full line continues into the next; a shorter line was
    broken by the sender at a word, so a space joins it to the next."""
    text, previous = "", None
    for line in lines:
        if not line:
            continue
        if previous is not None and len(previous) < width:
            text += " "
        text += line
        previous = line
    return text


def free_text(qualifier: str, text: str) -> list[Segment]:
    lines = text_lines(text)
    return [
        segment("FTX", qualifier, "", "", lines[i : i + FTX_LINES])
        for i in range(0, len(lines), FTX_LINES)
    ]


def read_text(segments: list[Segment], qualifier: str) -> str:
    lines: list[str] = []
    for seg in segments:
        if seg.tag == "FTX" and seg.component(0) == qualifier:
            lines.extend(seg.elements[3] if len(seg.elements) > 3 else ())
    return join_lines(lines)


# --------------------------------------------------------------------------------------------
# Which message
# --------------------------------------------------------------------------------------------


class Stage(NamedTuple):
    """The control stage a CUSRES reports: the stage, its GIS, and where a partner's code list
    mapped a code of its own to the stage, that code as written (else None)."""

    stage: int
    segment: Segment
    code: control_pb2.Code | None = None


def control_stage(root: Group, code_lists: CodeLists = NO_CODE_LISTS) -> Stage | None:
    """The control stage the heading GIS reports, with its segment; None for a Response.

    A 7365 code of the D.96B list (3055 absent or 6) reports a stage by ``STAGE_INDICATORS``
    (or ZZZ with a hub process type); a code of another agency (GIS+819::143) reports one only
    where the code list registered for it maps the code to a stage, and is otherwise kept as
    given (a Response's status)."""
    found: Stage | None = None
    for gis in root.all("GIS"):
        code, qualifier = gis.component(0, 0), gis.component(0, 1)
        agency, process = gis.component(0, 2), gis.component(0, 3)
        kept: control_pb2.Code | None = None
        stage: int | None
        if agency in ("", UN_AGENCY):
            stage = STAGE_INDICATORS.get(code)
            if code == MUTUALLY_DEFINED:
                stage = HUB_STAGES.get(process)
        else:
            listed = code_lists.find(agency, PROCESSING_INDICATOR, qualifier)
            stage = listed.stage(code) if listed is not None else None
            kept = control_pb2.Code(value=code, list_id=qualifier, agency=agency)
        if stage is None:
            continue
        if found is not None:
            raise _invalid(
                gis, "GIS", f"a second control stage; {found.segment.where()} already gave one"
            )
        found = Stage(stage, gis, kept)
    return found


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def wco_date(value: str, form: str) -> tuple[str, str]:
    """A DTM value and 2379 format as a WCO DateTimeString (value, formatCode). WCO dates are
    formatCode 102 (yyyyMMdd) or 304 (yyyyMMddHHmmssZ); EDIFACT times in customs messages carry
    no zone and are taken as UTC, so 204 (CCYYMMDDHHMMSS) becomes 304 with ``Z``, 203
    (CCYYMMDDHHMM) 304 with seconds 00 and ``Z``, and a 304 in UTC (zone ``Z`` or ``UTC``) 304
    with ``Z``. Anything else is kept verbatim."""
    if form == "204" and len(value) == 14 and digits(value):
        return f"{value}Z", "304"
    if form == "203" and len(value) == 12 and digits(value):
        return f"{value}00Z", "304"
    if form == "304" and len(value) > 14 and digits(value[:14]) and value[14:] in ("Z", "UTC"):
        return f"{value[:14]}Z", "304"
    return value, form


def edifact_date(value: str, form: str) -> tuple[str, str]:
    """The inverse of ``wco_date`` for writing: a WCO 304 time in UTC (``...Z``) is written as
    2379 204 (CCYYMMDDHHMMSS, UTC, as the control times); anything else verbatim."""
    if form == "304" and len(value) == 15 and digits(value[:14]) and value[14] == "Z":
        return value[:14], "204"
    return value, form


def _dates(root: Group) -> dict[str, Segment]:
    dates: dict[str, Segment] = {}
    for dtm in root.all("DTM"):
        dates.setdefault(dtm.component(0, 0), dtm)
    return dates


def _setter(seg: Segment, path: str, what: str) -> Callable[[str, str], str]:
    """Sets a single-valued field once; a second different value is refused."""

    def put(current: str, value: str) -> str:
        if current and value and current != value:
            raise _invalid(seg, path, f"a second {what} that differs from the first")
        return current or value

    return put


def read_control_result(root: Group, stage: int) -> ControlResult:
    result = ControlResult(stage=stage)  # type: ignore[arg-type]
    bgm = root.first("BGM")
    if bgm is not None:
        result.control_id = bgm.component(1, 0)
    dates = _dates(root)
    for qualifier in CONTROL_DATES:
        if qualifier in dates:
            result.controlled_at = _rfc3339(dates[qualifier])
            break
    for ftx in root.all("FTX"):
        if ftx.component(0) != TEXT_CUSTOMS or ftx.component(2, 2) != MUTUALLY_DEFINED:
            continue
        code, code_list = ftx.component(2, 0), ftx.component(2, 1)
        if code_list == LIST_CONTROL_TYPE:
            if code not in CONTROL_TYPES:
                raise _invalid(ftx, "FTX", f"control type {quoted(code)} is not one of "
                               f"{', '.join(CONTROL_TYPES)}")  # fmt: skip
            result.control_type = CONTROL_TYPES[code]
        elif code_list == LIST_OUTCOME:
            if code not in OUTCOMES:
                raise _invalid(ftx, "FTX", f"control outcome {quoted(code)} is not one of "
                               f"{', '.join(OUTCOMES)}")  # fmt: skip
            result.outcome = OUTCOMES[code]
        elif code_list == LIST_RESULT_CODE:
            result.control_result_code = code
        elif code_list == LIST_FUNCTION:
            result.notification_function_code = code
    for eqd in root.all("EQD"):
        if eqd.component(0) == EQUIPMENT_CONTAINER and eqd.component(1, 0):
            result.container_ids.append(eqd.component(1, 0))
    # The first customs office is the one that controlled; a national system may name others
    # (the office of declaration, of exit), which stay in the residue, in place.
    offices = [party for party in root.of("SG1") if party.segments[0].component(0) == PARTY_CUSTOMS]
    for party in offices[:1]:
        result.office_id = party.segments[0].component(1, 0)
        for contact in party.of("SG2"):
            cta = contact.segments[0]
            result.officer_id = _setter(cta, "SG1/SG2/CTA", "officer")(
                result.officer_id, cta.component(1, 0)
            )
    for reference in root.of("SG3"):
        rff = reference.segments[0]
        qualifier, value = rff.component(0, 0), rff.component(0, 1)
        put = _setter(rff, "SG3/RFF", f"{qualifier} reference")
        if qualifier == REF_MRN:
            result.declaration_id = put(result.declaration_id, value)
        elif qualifier == REF_LRN:
            result.functional_reference_id = put(result.functional_reference_id, value)
        elif qualifier == REF_TRANSPORT:
            result.transport_document_id = put(result.transport_document_id, value)
        elif qualifier == REF_SEAL and value:
            result.seals_applied.append(value)
        elif qualifier == REF_REVISION and value:
            if not digits(value, 20) or int(value) >= 2**64:
                raise _invalid(rff, "SG3/RFF", "revision (FV) must be an unsigned number")
            result.revision = int(value)
    for error in root.of("SG4"):
        erp = error.segments[0]
        erc = error.first("ERC")
        result.findings.add(
            code=erc.component(0, 0) if erc else "",
            description=read_text(error.segments, TEXT_ERROR),
            goods_item_sequence=erp.component(0, 1),
        )
    return result


def read_response(root: Group) -> Response:
    response = Response()
    bgm = root.first("BGM")
    if bgm is not None:
        response.functional_reference_id = bgm.component(1, 0)
    dates = _dates(root)
    for qualifier, target in (
        (DATE_DOCUMENT, response.issue_date_time),
        (DATE_ACCEPTANCE, response.declaration.acceptance_date_time),
    ):
        if qualifier in dates:
            dtm = dates[qualifier]
            target.value, target.format_code = wco_date(dtm.component(0, 1), dtm.component(0, 2))
    function_segment: Segment | None = None
    for gis in root.all("GIS"):
        code, process = gis.component(0, 0), gis.component(0, 3)
        function = None
        if gis.component(0, 2) in ("", UN_AGENCY):  # another agency's code is its own status
            function = RESPONSE_INDICATORS.get(code)
            if code == MUTUALLY_DEFINED and process:
                function = process
        if function is None:
            response.status.add(name_code=code)
            continue
        if function_segment is not None:
            raise _invalid(
                gis, "GIS", f"a second response processing indicator; "
                f"{function_segment.where()} already gave one"
            )  # fmt: skip
        function_segment = gis
        response.function_code = function
    for party in root.of("SG1"):
        nad = party.segments[0]
        if nad.component(0) == PARTY_CUSTOMS and nad.component(1, 0):
            response.contact_office.add(id=nad.component(1, 0))
    declaration = response.declaration
    for reference in root.of("SG3"):
        rff = reference.segments[0]
        qualifier, value = rff.component(0, 0), rff.component(0, 1)
        put = _setter(rff, "SG3/RFF", f"{qualifier} reference")
        if qualifier == REF_MRN:
            declaration.id = put(declaration.id, value)
            declaration.version_id = put(declaration.version_id, rff.component(0, 3))
        elif qualifier == REF_LRN:
            declaration.functional_reference_id = put(declaration.functional_reference_id, value)
    for group in root.of("SG4"):
        error = response.error.add()
        erp = group.segments[0]
        if any(erp.component(0, i) for i in range(2)) or erp.component(1, 0):
            error.pointer.add(
                document_section_code=erp.component(0, 0),
                sequence_numeric=erp.component(0, 1),
                tag_id=erp.component(1, 0),
            )
        for rff in group.all("RFF"):
            if rff.component(0, 0) == REF_POINTER:
                error.pointer.add(
                    document_section_code=rff.component(0, 1),
                    sequence_numeric=rff.component(0, 2),
                    tag_id=rff.component(0, 3),
                )
        erc = group.first("ERC")
        error.validation_code = erc.component(0, 0) if erc else ""
        error.description = read_text(group.segments, TEXT_ERROR)
    if not declaration.ListFields():
        response.ClearField("declaration")
    return response


def _rfc3339(dtm: Segment) -> str:
    value, form = dtm.component(0, 1), dtm.component(0, 2)
    patterns = {"102": "%Y%m%d", "203": "%Y%m%d%H%M", "204": "%Y%m%d%H%M%S"}
    text = value[:-1] if form == "304" and value.endswith("Z") else value
    pattern = patterns.get("204" if form == "304" else form)
    try:
        if pattern is None:
            raise ValueError(form)
        when = datetime.strptime(text, pattern)  # EDIFACT control times are UTC
    except ValueError:
        raise TranslationError(
            f"{dtm.where()}: date/time format {quoted(form)} with a {len(value)}-character value "
            "cannot be read as a control time (formats 102, 203, 204, 304 with Z)",
            reason=INVALID,
            line=dtm.number,
            path="DTM",
        ) from None
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _refused(what: str) -> TranslationError:
    return TranslationError(f"cannot be written as CUSRES: {what}", reason=INVALID)


def write_control_result(result: ControlResult) -> list[Segment]:
    """Segments between UNH and UNT. ``evidence`` is not written (CUSRES has no place for a
    digest); everything else is, and reads back equal."""
    stage = result.stage
    if stage == control_pb2.CONTROL_STAGE_UNSPECIFIED:
        raise _refused("a ControlResult needs a stage (its GIS processing indicator)")
    # proto3 enums are open: a partner's message may carry a number no name has here
    known: tuple[tuple[str, int, set[int]], ...] = (
        ("stage", stage, set(STAGE_WRITE) | set(HUB_STAGES.values())),
        ("control_type", result.control_type, {0, *CONTROL_TYPES.values()}),
        ("outcome", result.outcome, {0, *OUTCOMES.values()}),
    )
    for what, number, numbers in known:
        if number not in numbers:
            raise _refused(f"{what} {number} is not a value this hub knows")
    out = [segment("BGM", DOCUMENT_CONTROL, result.control_id, MESSAGE_ORIGINAL)]
    if result.controlled_at:
        out.append(segment("DTM", (DATE_DOCUMENT, _edifact_time(result.controlled_at), "204")))
    names = {v: k for k, v in CONTROL_TYPES.items()}
    if result.control_type:
        out.append(_coded_text(names[result.control_type], LIST_CONTROL_TYPE))
    outcome_names = {v: k for k, v in OUTCOMES.items()}
    if result.outcome:
        out.append(_coded_text(outcome_names[result.outcome], LIST_OUTCOME))
    if result.control_result_code:
        out.append(_coded_text(result.control_result_code, LIST_RESULT_CODE))
    if result.notification_function_code:
        out.append(_coded_text(result.notification_function_code, LIST_FUNCTION))
    if stage in STAGE_WRITE:
        out.append(segment("GIS", STAGE_WRITE[stage]))
    else:
        name = next(k for k, v in HUB_STAGES.items() if v == stage)
        out.append(segment("GIS", (MUTUALLY_DEFINED, "", "", name)))
    out.extend(segment("EQD", EQUIPMENT_CONTAINER, container) for container in result.container_ids)
    if result.office_id or result.officer_id:
        out.append(segment("NAD", PARTY_CUSTOMS, result.office_id))
        if result.officer_id:
            out.append(segment("CTA", CONTACT_INFORMATION, result.officer_id))
    for qualifier, value in (
        (REF_MRN, result.declaration_id),
        (REF_LRN, result.functional_reference_id),
        (REF_TRANSPORT, result.transport_document_id),
    ):
        if value:
            out.append(segment("RFF", (qualifier, value)))
    out.extend(segment("RFF", (REF_SEAL, seal)) for seal in result.seals_applied)
    if result.revision:
        out.append(segment("RFF", (REF_REVISION, str(result.revision))))
    for finding in result.findings:
        section = SECTION_DETAIL if finding.goods_item_sequence else SECTION_HEADING
        out.append(segment("ERP", (section, finding.goods_item_sequence)))
        if finding.code:
            out.append(segment("ERC", finding.code))
        out.extend(free_text(TEXT_ERROR, finding.description))
    return out


def write_response(response: Response) -> list[Segment]:
    """Segments between UNH and UNT. Written: BGM, issue and acceptance dates, the function code
    and status name codes (GIS), contact offices (NAD+CM), MRN with version and LRN (RFF),
    errors (ERP/RFF/ERC/FTX). Not written: see docs/formats/edifact.md."""
    document = DOCUMENT_ERROR if response.error else DOCUMENT_GENERAL
    out = [segment("BGM", document, response.functional_reference_id, MESSAGE_ORIGINAL)]
    for qualifier, when in (
        (DATE_DOCUMENT, response.issue_date_time),
        (DATE_ACCEPTANCE, response.declaration.acceptance_date_time),
    ):
        if when.value or when.format_code:
            out.append(segment("DTM", (qualifier, *edifact_date(when.value, when.format_code))))
    function = response.function_code
    if function in HUB_STAGES:
        raise _refused(f"function code {quoted(function)} is reserved for control stages")
    if function in RESPONSE_WRITE:
        out.append(segment("GIS", RESPONSE_WRITE[function]))
    elif function:
        out.append(segment("GIS", (MUTUALLY_DEFINED, "", "", function)))
    for status in response.status:
        code = status.name_code
        if code in RESPONSE_INDICATORS or code in STAGE_INDICATORS:
            raise _refused(
                f"status name code {quoted(code)} would read back as a function code or a "
                "control stage"
            )
        if code:
            out.append(segment("GIS", code))
    out.extend(
        segment("NAD", PARTY_CUSTOMS, office.id) for office in response.contact_office if office.id
    )
    declaration = response.declaration
    if declaration.id or declaration.version_id:
        out.append(segment("RFF", (REF_MRN, declaration.id, "", declaration.version_id)))
    if declaration.functional_reference_id:
        out.append(segment("RFF", (REF_LRN, declaration.functional_reference_id)))
    for error in response.error:
        out.append(segment("ERP"))
        for pointer in error.pointer:
            reference = (REF_POINTER, pointer.document_section_code, pointer.sequence_numeric)
            out.append(segment("RFF", (*reference, pointer.tag_id)))
        if error.validation_code:
            out.append(segment("ERC", error.validation_code))
        out.extend(free_text(TEXT_ERROR, error.description))
    return out


def _coded_text(code: str, code_list: str) -> Segment:
    return segment("FTX", TEXT_CUSTOMS, "", (code, code_list, MUTUALLY_DEFINED))


def _edifact_time(text: str) -> str:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise _refused("controlled_at is not an RFC 3339 time") from None
    if when.tzinfo is None:
        raise _refused("controlled_at has no time zone")
    return when.astimezone(UTC).strftime("%Y%m%d%H%M%S")


__all__ = [
    "ControlResult",
    "Response",
    "Stage",
    "control_stage",
    "edifact_date",
    "read_control_result",
    "read_response",
    "wco_date",
    "write_control_result",
    "write_response",
]
