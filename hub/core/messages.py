"""The business messages a hub carries, and the keys people search them by (pure core).

Business keys are what customs officers and auditors know a message by: the LRN (D026) and
MRN (D014) of a declaration, its UCR (016), container ids (159), an AEO id; for a movement its
UCR, master UCR, MRN and inventory consignment reference. They are extracted
once, when a message is stored, so that listings and searches never parse bodies.

They are bounded where a message comes in (from a partner or a domestic system): every value at
most ``MAX_KEY_LENGTH`` characters of printable text, at most ``MAX_KEYS`` of them, so that no
message's data can break the store's indexes, or any other message's transaction with them.
"""

from __future__ import annotations

from collections.abc import Callable

from google.protobuf.message import Message

from hub.core.errors import BusinessKeyError
from hub.pb.customs_hub.v1 import aeo_pb2, control_pb2, declaration_pb2, movement_pb2, response_pb2

GoodsDeclaration = declaration_pb2.GoodsDeclaration
AeoStatus = aeo_pb2.AeoStatus
ControlResult = control_pb2.ControlResult
Response = response_pb2.Response
MovementEvent = movement_pb2.MovementEvent

BODY_TYPES: dict[str, type[Message]] = {
    cls.DESCRIPTOR.full_name: cls
    for cls in (GoodsDeclaration, AeoStatus, ControlResult, Response, MovementEvent)
}

# Short names operators write in config and on the command line.
SHORT_NAMES: dict[str, str] = {cls.DESCRIPTOR.name: name for name, cls in BODY_TYPES.items()}

# The names an AEO programme and standing have in config, on the command line, in the registry
# and in lookups' answers (aeo.proto's enums, by number). Unspecified has no name: a status
# that names no programme is recognised under none.
AEO_PROGRAMMES: dict[int, str] = {
    aeo_pb2.AEO_PROGRAMME_SECURITY_AND_SAFETY: "security-safety",
    aeo_pb2.AEO_PROGRAMME_CUSTOMS_SIMPLIFICATIONS: "simplifications",
    aeo_pb2.AEO_PROGRAMME_FULL: "full",
}
AEO_STANDINGS: dict[int, str] = {
    aeo_pb2.AEO_STANDING_VALID: "valid",
    aeo_pb2.AEO_STANDING_SUSPENDED: "suspended",
    aeo_pb2.AEO_STANDING_REVOKED: "revoked",
}
UNSPECIFIED = "unspecified"


def body_class(body_type: str) -> type[Message] | None:
    return BODY_TYPES.get(body_type)


def full_body_type(name: str) -> str | None:
    """Accept "GoodsDeclaration" or "customs_hub.v1.GoodsDeclaration"."""
    if name in BODY_TYPES:
        return name
    return SHORT_NAMES.get(name)


BusinessKeys = dict[str, list[str]]

# WCO DM identifiers are at most 70 characters (an..70; LRN, MRN, UCR an..35, container id
# an..17): 128 leaves room for national forms and is what the store indexes in full.
MAX_KEY_LENGTH = 128
MAX_KEYS = 1024  # values of all names in one message (a declaration of 999 containers fits)
KEY_NAMES = {
    "lrn": "the LRN (functional reference, D026)",
    "mrn": "the MRN (declaration id, D014)",
    "ucr": "the UCR (016)",
    "container": "a container id (159)",
    "aeo": "the AEO id",
    "tin": "the TIN",
    "control": "the control id",
    "icr": "the inventory consignment reference",
}


class InvalidBusinessKey(ValueError):
    """A business key the hub cannot keep: too long, not printable, or too many of them."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name


def _check_key(name: str, value: str) -> None:
    what = KEY_NAMES.get(name, name)
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidBusinessKey(
            name, f"{what} is {len(value)} characters long; at most {MAX_KEY_LENGTH} are kept"
        )
    if not value.isprintable():
        raise InvalidBusinessKey(name, f"{what} holds a control character")


def business_keys(document: Message) -> BusinessKeys:
    """LRN, MRN, UCR, container ids and AEO ids named by a business message, each value once.
    Raises InvalidBusinessKey for one the hub cannot keep (see the module's docstring)."""
    keys: BusinessKeys = {}
    seen: set[tuple[str, str]] = set()

    def add(name: str, value: str) -> None:
        value = value.strip()
        if not value or (name, value) in seen:
            return
        _check_key(name, value)
        seen.add((name, value))
        if len(seen) > MAX_KEYS:
            raise InvalidBusinessKey(name, f"the message names more than {MAX_KEYS} business keys")
        keys.setdefault(name, []).append(value)

    if isinstance(document, GoodsDeclaration):
        add("lrn", document.functional_reference_id)
        add("mrn", document.id)
        shipment = document.goods_shipment
        add("ucr", shipment.ucr.id)
        for consignment in (document.consignment, shipment.consignment):
            for equipment in consignment.transport_equipment:
                add("container", equipment.id)
        for item in shipment.government_agency_goods_item:
            for equipment in item.commodity.transport_equipment:
                add("container", equipment.id)
    elif isinstance(document, AeoStatus):
        add("aeo", document.aeo_id)
        add("tin", document.tin)
    elif isinstance(document, ControlResult):
        add("mrn", document.declaration_id)
        add("lrn", document.functional_reference_id)
        add("control", document.control_id)
        for container in document.container_ids:
            add("container", container)
    elif isinstance(document, Response):
        add("lrn", document.declaration.functional_reference_id)
        add("mrn", document.declaration.id)
    elif isinstance(document, MovementEvent):
        movement_keys(document, add)
    return {k: v for k, v in keys.items() if v}


def movement_keys(event: MovementEvent, add: Callable[[str, str], None]) -> None:
    """A movement's UCRs (the declaration's and the master UCR it is consolidated under, and
    every UCR a query answer names), the MRN (imports entry number, a DUCR's declaration id)
    and the inventory consignment reference."""
    for block in (event.ucr_block, event.query_ucr, event.control_ucr):
        add("ucr", block.ucr)
    add("ucr", event.master_ucr)
    add("mrn", event.entry_number)
    add("icr", event.inventory_consignment_reference)
    for entry in event.entry:
        add("ucr", entry.ucr_block.ucr)
    ducrs = [*event.child_ducr]
    if event.HasField("queried_ducr"):
        ducrs.insert(0, event.queried_ducr)
    for ducr in ducrs:
        add("ucr", ducr.ucr)
        add("ucr", ducr.parent_mucr)
        add("mrn", ducr.declaration_id)
    for mucr in (event.queried_mucr, event.parent_mucr, *event.child_mucr):
        add("ucr", mucr.ucr)
        add("ucr", mucr.parent_mucr)


def declaration_countries(document: GoodsDeclaration) -> list[str]:
    """Countries a declaration names as destination (465) and exportation (062), in that order."""
    shipment = document.goods_shipment
    countries = [shipment.destination.country_code.strip(), shipment.export_country.id.strip()]
    return [c for c in countries if c]


def keys_of(document: Message) -> BusinessKeys:
    """``business_keys``, refused with ``business-key-invalid`` where one cannot be kept."""
    try:
        return business_keys(document)
    except InvalidBusinessKey as exc:
        raise BusinessKeyError(str(exc)) from None
