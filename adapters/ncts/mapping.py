"""NCTS phase 6 control messages read into ``ControlResult``.

Three messages carry the outcome of a transit control (docs/formats/ncts-p6.md has the tables):

* CC029C *Release for transit*: the office of departure releases the movement; its optional
  ControlResult group holds the control result code (A1 satisfactory, A2 considered
  satisfactory, A5 minor discrepancies, B1 not satisfactory), the date and who controlled.
* CC060C *Control decision notification*: a control is intended; TypeOfControls lists the
  controls and RequestedDocument the documents the holder must present.
* CC044C *Unloading remarks*: the trader at destination reports whether the goods conform and
  whether the seals are in good state (``stateOfSeals`` 0: missing, damaged or with
  discrepancies; rule G0017).

Pure: a schema-valid element tree in, a ControlResult out. It relies on the schema for
structure (required elements are present, codes and dates have their patterns) and reads
elements by local name; children are unqualified in these schemas.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from lxml import etree

from adapters.xmlsafe import local_name
from hub.pb.customs_hub.v1 import control_pb2

ControlResult = control_pb2.ControlResult

# CC029C ControlResult/code (CL ControlResultCodeDeparture, the Transit Manual's control
# result codes). Codes not listed keep outcome UNSPECIFIED; the code itself is always kept in
# control_result_code.
OUTCOMES: Mapping[str, control_pb2.ControlOutcome] = {
    "A1": control_pb2.CONTROL_OUTCOME_NO_FINDINGS,  # satisfactory
    "A2": control_pb2.CONTROL_OUTCOME_NO_FINDINGS,  # considered satisfactory
    "A5": control_pb2.CONTROL_OUTCOME_DISCREPANCY,  # minor discrepancies (e.g. seals, G0017)
    "B1": control_pb2.CONTROL_OUTCOME_DISCREPANCY,  # not satisfactory
}

# CC060C TypeOfControls/type (CL ControlType) -> ControlType. The code list lives in the EU's
# CS/RD2 reference data, which is not among the copied schemas; no meaning is guessed. A code
# listed here sets control_type; every code is kept as a finding either way.
CONTROL_TYPES: Mapping[str, control_pb2.ControlType] = {}

FLAG_NO = "0"  # CL027 Flag: 0 no, 1 yes

# Finding codes: at most 8 characters, so that partners' formats carry them (EDIFACT ERC 9321
# is an..8); the long explanation is the finding's description (docs/formats/ncts-p6.md).
TYPE_OF_CONTROL = "TC"  # + TypeOfControls/type (an..3, CL716): TC<type>
REQUESTED_DOCUMENT = "RD"  # + RequestedDocument/documentType (an4): RD<type>
SEALS_NOT_OK = "SEALSNOK"  # stateOfSeals 0
NOT_CONFORM = "CONF-NOK"  # conform 0
UNLOADING_INCOMPLETE = "UNLD-INC"  # unloadingCompletion 0
UNLOADING_REMARK = "UNLD-RMK"  # UnloadingRemark/unloadingRemark
OTHER_THINGS = "OTHER"  # TransitOperation/otherThingsToReport
SEAL_FOUND = "SEAL"  # Consignment/TransportEquipment/Seal on unloading
ITEM_DIFFERS = "ITEMDIFF"  # Consignment/HouseConsignment/ConsignmentItem on unloading


def control_result(root: etree._Element) -> ControlResult:
    """The ControlResult one validated CC029C, CC060C or CC044C reports."""
    return _MAPPERS[local_name(str(root.tag))](root)


def _text(parent: etree._Element | None, path: str) -> str:
    if parent is None:
        return ""
    value = parent.findtext(path)
    return value.strip() if value else ""


def _control_id(root: etree._Element) -> str:
    """The sender's messageIdentification (an..35, unique per sender): one message per control
    result. It fits EDIFACT BGM 1004 (an..35); the message type is implied by the stage."""
    return _text(root, "messageIdentification")


def _revision(root: etree._Element, stage: int) -> int:
    """Later messages about a movement supersede earlier ones: preparation time (yyyyMMddHHmmss)
    with the stage as the last digit, as for WCO notifications (adapters/wco/controls.py)."""
    prepared = _text(root, "preparationDateAndTime")  # pattern \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}
    digits = prepared.replace("-", "").replace("T", "").replace(":", "")
    return int(digits) * 10 + stage if digits.isdecimal() else 0


def _rfc3339(value: str) -> str:
    """An NCTS date or date-time as RFC 3339. NCTS times carry no zone; UTC is implied
    (stypes.xsd, DateTimeType). A date alone is taken as midnight UTC, as WCO format 102."""
    if not value:
        return ""
    return f"{value}Z" if "T" in value else f"{value}T00:00:00Z"


def _release_for_transit(root: etree._Element) -> ControlResult:
    """CC029C."""
    stage = control_pb2.CONTROL_STAGE_RELEASED
    operation = root.find("TransitOperation")
    mrn, lrn = _text(operation, "MRN"), _text(operation, "LRN")
    result = ControlResult(
        control_id=_control_id(root),
        declaration_id=mrn,
        functional_reference_id=lrn,
        stage=stage,
        office_id=_text(root, "CustomsOfficeOfDeparture/referenceNumber"),
        revision=_revision(root, stage),
    )
    control = root.find("ControlResult")
    if control is not None:
        code = _text(control, "code")
        result.control_result_code = code
        result.outcome = OUTCOMES.get(code, control_pb2.CONTROL_OUTCOME_UNSPECIFIED)
        result.officer_id = _text(control, "controlledBy")
        result.controlled_at = _rfc3339(_text(control, "date"))
        text = _text(control, "text")
        if text:
            result.findings.add(code=code, description=text)
    consignment = root.find("Consignment")
    _equipment(consignment, result, seals_applied=True)
    result.transport_document_id = _transport_document(consignment)
    return result


def _control_decision(root: etree._Element) -> ControlResult:
    """CC060C."""
    operation = root.find("TransitOperation")
    mrn, lrn = _text(operation, "MRN"), _text(operation, "LRN")
    requested = root.findall("RequestedDocument")
    stage = (
        control_pb2.CONTROL_STAGE_DOCUMENTS_REQUIRED
        if requested
        else control_pb2.CONTROL_STAGE_INTENDED
    )
    result = ControlResult(
        control_id=_control_id(root),
        declaration_id=mrn,
        functional_reference_id=lrn,
        stage=stage,
        office_id=_text(root, "CustomsOfficeOfDeparture/referenceNumber"),
        controlled_at=_rfc3339(_text(operation, "controlNotificationDateAndTime")),
        revision=_revision(root, stage),
    )
    control_types = []
    for control in root.iterfind("TypeOfControls"):
        kind = _text(control, "type")
        control_types.append(CONTROL_TYPES.get(kind, control_pb2.CONTROL_TYPE_UNSPECIFIED))
        result.findings.add(code=f"{TYPE_OF_CONTROL}{kind}", description=_text(control, "text"))
    for document in requested:
        result.findings.add(
            code=f"{REQUESTED_DOCUMENT}{_text(document, 'documentType')}",
            description=_text(document, "description"),
        )
    known = [kind for kind in control_types if kind != control_pb2.CONTROL_TYPE_UNSPECIFIED]
    if known:
        result.control_type = known[0]
    elif requested and not control_types:
        # Documents requested and no other control named: a documentary control.
        result.control_type = control_pb2.CONTROL_TYPE_DOCUMENTARY
    return result


def _unloading_remarks(root: etree._Element) -> ControlResult:
    """CC044C."""
    stage = control_pb2.CONTROL_STAGE_COMPLETED
    operation = root.find("TransitOperation")
    remark = root.find("UnloadingRemark")
    mrn = _text(operation, "MRN")
    result = ControlResult(
        control_id=_control_id(root),
        declaration_id=mrn,
        stage=stage,
        office_id=_text(root, "CustomsOfficeOfDestinationActual/referenceNumber"),
        controlled_at=_rfc3339(_text(remark, "unloadingDate")),
        revision=_revision(root, stage),
    )
    seals_broken = _text(remark, "stateOfSeals") == FLAG_NO
    not_conform = _text(remark, "conform") == FLAG_NO
    result.outcome = (
        control_pb2.CONTROL_OUTCOME_DISCREPANCY
        if seals_broken or not_conform
        else control_pb2.CONTROL_OUTCOME_NO_FINDINGS
    )
    if seals_broken:
        result.findings.add(
            code=SEALS_NOT_OK,
            description="seals not in good state: missing, damaged or with discrepancies",
        )
    if not_conform:
        result.findings.add(
            code=NOT_CONFORM, description="the unloaded goods do not conform to the declaration"
        )
    if _text(remark, "unloadingCompletion") == FLAG_NO:
        result.findings.add(code=UNLOADING_INCOMPLETE, description="unloading not completed")
    for code, text in (
        (UNLOADING_REMARK, _text(remark, "unloadingRemark")),
        (OTHER_THINGS, _text(operation, "otherThingsToReport")),
    ):
        if text:
            result.findings.add(code=code, description=text)
    consignment = root.find("Consignment")
    # The Consignment of an unloading remark holds only what differs from the declaration.
    _equipment(consignment, result, seals_applied=False)
    result.transport_document_id = _transport_document(consignment)
    if consignment is not None:
        for item in consignment.iterfind("HouseConsignment/ConsignmentItem"):
            result.findings.add(
                code=ITEM_DIFFERS,
                description="unloading found data differing from the declaration",
                goods_item_sequence=_text(item, "declarationGoodsItemNumber"),
            )
    return result


def _equipment(
    consignment: etree._Element | None, result: ControlResult, *, seals_applied: bool
) -> None:
    """Containers, and seals: affixed ones on release (CC029C), reported ones on unloading
    (CC044C, as findings: the seals found differ from those declared)."""
    if consignment is None:
        return
    for equipment in consignment.iterfind("TransportEquipment"):
        container = _text(equipment, "containerIdentificationNumber")
        if container:
            result.container_ids.append(container)
        for seal in equipment.iterfind("Seal"):
            identifier = _text(seal, "identifier")
            if not identifier:
                continue
            if seals_applied:
                result.seals_applied.append(identifier)
            else:
                result.findings.add(code=SEAL_FOUND, description=identifier)


def _transport_document(consignment: etree._Element | None) -> str:
    """The first transport document of the consignment, else of its first house consignment."""
    if consignment is None:
        return ""
    for path in ("TransportDocument", "HouseConsignment/TransportDocument"):
        reference = _text(consignment, f"{path}/referenceNumber")
        if reference:
            return reference
    return ""


_MAPPERS: Mapping[str, Callable[[etree._Element], ControlResult]] = {
    "CC029C": _release_for_transit,
    "CC060C": _control_decision,
    "CC044C": _unloading_remarks,
}
