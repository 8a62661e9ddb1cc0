"""Control results read off WCO DM (RES-DMS) notifications.

CDS tells a declarant about customs controls through the notification's FunctionCode and,
on release and clearance, an AdditionalInformation with StatementTypeCode AFB whose
StatementCode is the control result code (A1 satisfactory, A2 considered satisfactory,
B1 not satisfactory). A partner administration can recognise such results, so the hub turns
them into ``ControlResult`` messages. Pure: a Response in, a ControlResult (or None) out.
"""

from __future__ import annotations

from datetime import UTC, datetime

from hub.pb.customs_hub.v1 import control_pb2, response_pb2

ControlResult = control_pb2.ControlResult

# RES-DMS FunctionCode -> (stage, control type implied by the notification)
STAGES = {
    "05": (control_pb2.CONTROL_STAGE_INTENDED, control_pb2.CONTROL_TYPE_PHYSICAL),
    "06": (control_pb2.CONTROL_STAGE_DOCUMENTS_REQUIRED, control_pb2.CONTROL_TYPE_DOCUMENTARY),
    "07": (control_pb2.CONTROL_STAGE_COMPLETED, control_pb2.CONTROL_TYPE_PHYSICAL),
    "08": (control_pb2.CONTROL_STAGE_RELEASED, control_pb2.CONTROL_TYPE_UNSPECIFIED),
    "09": (control_pb2.CONTROL_STAGE_CLEARED, control_pb2.CONTROL_TYPE_UNSPECIFIED),
    "52": (control_pb2.CONTROL_STAGE_DETAINED, control_pb2.CONTROL_TYPE_UNSPECIFIED),
}
CONTROL_RESULT_STATEMENT = "AFB"
OUTCOMES = {
    "A1": control_pb2.CONTROL_OUTCOME_NO_FINDINGS,  # satisfactory
    "A2": control_pb2.CONTROL_OUTCOME_NO_FINDINGS,  # considered satisfactory
    "B1": control_pb2.CONTROL_OUTCOME_DISCREPANCY,  # not satisfactory
}


def issued_at(response: response_pb2.Response) -> datetime | None:
    """The notification's issue time (formatCode 304 yyyyMMddHHmmssZ or 102 yyyyMMdd)."""
    value = response.issue_date_time.value.strip()
    try:
        if response.issue_date_time.format_code == "304":
            return datetime.strptime(value.rstrip("Z"), "%Y%m%d%H%M%S").replace(tzinfo=UTC)
        if response.issue_date_time.format_code == "102":
            return datetime.strptime(value, "%Y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return None
    return None


def control_result_from(response: response_pb2.Response) -> ControlResult | None:
    """The ControlResult a notification reports, or None when it reports no control."""
    code = response.function_code.strip()
    if code not in STAGES:
        return None
    stage, control_type = STAGES[code]
    afb = next(
        (
            info.statement_code.strip()
            for info in response.additional_information
            if info.statement_type_code.strip() == CONTROL_RESULT_STATEMENT
        ),
        "",
    )
    outcome = OUTCOMES.get(afb, control_pb2.CONTROL_OUTCOME_UNSPECIFIED)
    if code == "07":
        outcome = control_pb2.CONTROL_OUTCOME_DISCREPANCY  # the declaration had to be corrected
    declaration = response.declaration
    when = issued_at(response)
    mrn = declaration.id.strip()
    result = ControlResult(
        control_id=f"{mrn or declaration.functional_reference_id.strip()}/{code}/"
        f"{response.issue_date_time.value.strip()}",
        declaration_id=mrn,
        functional_reference_id=declaration.functional_reference_id.strip(),
        control_type=control_type,
        outcome=outcome,
        stage=stage,
        notification_function_code=code,
        control_result_code=afb,
        controlled_at=when.strftime("%Y-%m-%dT%H:%M:%SZ") if when else "",
        # Later notifications about one declaration supersede earlier ones; within one second
        # (CDS issues 07 and 09 together) the later stage of the control wins.
        revision=int(when.strftime("%Y%m%d%H%M%S")) * 10 + stage if when else 0,
    )
    for office in response.contact_office[:1]:
        result.office_id = office.id.strip()
    for error in response.error:
        result.findings.add(
            code=error.validation_code.strip(), description=error.description.strip()
        )
    return result
