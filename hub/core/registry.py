"""The registry's records (pure core): what the hub keeps of each AEO status and control
result it carries, as the store writes it and as lookups answer it.

A record is built from the opened document, the message that carried it, the trail leaf that
recorded that message and when it was received. Enum values are kept by name (the names
config, the command line and lookups use), so that a reader needs no protobuf to read one; the
document itself is kept too, serialised deterministically, for whoever needs every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import Message

from hub.core.messages import AEO_PROGRAMMES, AEO_STANDINGS, UNSPECIFIED, AeoStatus, ControlResult
from hub.core.revisions import control_key
from hub.pb.customs_hub.v1 import control_pb2


@dataclass(frozen=True, slots=True)
class AeoRecord:
    """One revision of an AEO status an administration granted."""

    party: str  # issuing administration (our own party for our AEOs)
    aeo_id: str
    tin: str
    name: str
    programme: str  # an AEO_PROGRAMMES name or UNSPECIFIED
    status: str  # an AEO_STANDINGS name or UNSPECIFIED
    valid_from: str  # yyyy-mm-dd or ""
    valid_to: str  # yyyy-mm-dd or "" (open-ended)
    revision: int
    country_code: str
    message_id: str
    trail_index: int  # the leaf that recorded it ("received"; "queued"/"submitted" for ours)
    received_at: datetime
    document: bytes  # the AeoStatus, serialised deterministically


@dataclass(frozen=True, slots=True)
class ControlRecord:
    """One revision of a control result an administration reported."""

    party: str  # controlling administration
    key: str  # registry_key(result): the control it is a revision of
    control_id: str
    declaration_id: str  # MRN
    functional_reference_id: str  # LRN
    transport_document_id: str
    container_ids: tuple[str, ...]
    control_type: str  # e.g. "physical", "non-intrusive", or "unspecified"
    stage: str  # e.g. "released", "documents-required", or "unspecified"
    outcome: str  # "no-findings" | "discrepancy" | "seizure" | "unspecified"
    controlled_at: str
    office_id: str
    revision: int
    message_id: str
    trail_index: int
    received_at: datetime
    document: bytes  # the ControlResult, serialised deterministically


def _enum_names(enum: EnumTypeWrapper, prefix: str) -> dict[int, str]:
    """An enum's values by number, named without their prefix, lower-case, words joined by
    hyphens (CONTROL_TYPE_NON_INTRUSIVE -> "non-intrusive"); 0 is UNSPECIFIED."""
    names = {v.number: v.name.removeprefix(prefix) for v in enum.DESCRIPTOR.values}
    return {n: name.lower().replace("_", "-") if n else UNSPECIFIED for n, name in names.items()}


CONTROL_TYPES: Mapping[int, str] = _enum_names(control_pb2.ControlType, "CONTROL_TYPE_")
CONTROL_STAGES: Mapping[int, str] = _enum_names(control_pb2.ControlStage, "CONTROL_STAGE_")
CONTROL_OUTCOMES: Mapping[int, str] = _enum_names(control_pb2.ControlOutcome, "CONTROL_OUTCOME_")


def _serialised(document: Message) -> bytes:
    return document.SerializeToString(deterministic=True)


def _containers(result: ControlResult) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for c in (c.strip() for c in result.container_ids) if c))


def registry_key(result: ControlResult) -> str:
    """Which control a result is a revision of, in its controlling administration's registry:
    its control id (``control:<id>``); without one, what it is about (control_key: the MRN,
    else the LRN, else its containers). Values are taken without surrounding spaces, as
    business keys and lookups take them.

    Two controls of one declaration (a documentary check, then a physical one) are two
    current results, each with its own revisions; a control's next revision may name more
    (an MRN once the declaration has one) and still replace the one before. Not the same as
    hub.core.revisions.state_of's key, by which ``current_state`` marks messages superseded."""
    control_id = result.control_id.strip()
    if control_id:
        return f"control:{control_id}"
    return control_key(result)  # which strips its values itself


def aeo_record(
    status: AeoStatus,
    message_id: str,
    trail_index: int,
    received_at: datetime,
    *,
    party: str | None = None,
) -> AeoRecord:
    """The record of ``status`` carried by ``message_id``. Its party is the status's issuing
    administration unless ``party`` says otherwise (partners' statuses are checked to name
    their sender before this, hub.core.revisions.state_of)."""
    return AeoRecord(
        party=status.issuing_administration if party is None else party,
        aeo_id=status.aeo_id.strip(),
        tin=status.tin.strip(),
        name=status.name,
        programme=AEO_PROGRAMMES.get(status.programme, UNSPECIFIED),
        status=AEO_STANDINGS.get(status.status, UNSPECIFIED),
        valid_from=status.valid_from,
        valid_to=status.valid_to,
        revision=status.revision,
        country_code=status.country_code,
        message_id=message_id,
        trail_index=trail_index,
        received_at=received_at,
        document=_serialised(status),
    )


def control_record(
    result: ControlResult,
    party: str,
    message_id: str,
    trail_index: int,
    received_at: datetime,
) -> ControlRecord:
    """The record of ``result`` reported by ``party`` (the controlling administration: the
    partner that sent it) and carried by ``message_id``."""
    return ControlRecord(
        party=party,
        key=registry_key(result),
        control_id=result.control_id.strip(),
        declaration_id=result.declaration_id.strip(),
        functional_reference_id=result.functional_reference_id.strip(),
        transport_document_id=result.transport_document_id.strip(),
        container_ids=_containers(result),
        control_type=CONTROL_TYPES.get(result.control_type, UNSPECIFIED),
        stage=CONTROL_STAGES.get(result.stage, UNSPECIFIED),
        outcome=CONTROL_OUTCOMES.get(result.outcome, UNSPECIFIED),
        controlled_at=result.controlled_at,
        office_id=result.office_id.strip(),
        revision=result.revision,
        message_id=message_id,
        trail_index=trail_index,
        received_at=received_at,
        document=_serialised(result),
    )


def record_of(
    document: Message,
    party: str,
    message_id: str,
    trail_index: int,
    received_at: datetime,
) -> AeoRecord | ControlRecord | None:
    """The registry record of a document ``party`` sent or issued, or None for a message the
    registry does not keep (a declaration, a response)."""
    if isinstance(document, AeoStatus):
        return aeo_record(document, message_id, trail_index, received_at, party=party)
    if isinstance(document, ControlResult):
        return control_record(document, party, message_id, trail_index, received_at)
    return None
