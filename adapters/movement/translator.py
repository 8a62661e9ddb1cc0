"""CDS inventory-linking movement documents <-> ``MovementEvent`` (format ``cds-movement``).

Reading: hardened parse -> the gateway wrapper (InventoryLinkingExportsInboundRequest) set
aside as residue -> the root element chooses the document kind -> schema validation with lxml
(schemas from ``schemas/inventory-linking`` only, compiled once per thread) -> the WCO codec
(adapters/wco/codec.py), which maps each element to the ``MovementEvent`` field named after it
through the shared schema table and keeps everything else as residue. Writing: codec -> the
same validation -> the wrapper put back -> bytes.

Accepted documents: the exports requests and responses (movement EAL/EAA/EDL/RET,
consolidation CST/EAC, query, control, movement totals EMR/ERS) and the imports goods
arrival and validate-movement request and response, bare or inside the exports gateway
wrapper. The imports declaration status notification is not: its published schema is not a
schema document (its root is not ``xs:schema``), so it cannot be checked.

What it must never do: load a schema from anywhere but ``schemas/inventory-linking``, or hand
over a message decoded from a document that did not validate.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message
from lxml import etree

from adapters.wco.codec import decode_element, encode_element
from adapters.wco.schema_table import INVENTORY_LINKING, NAMESPACES, clark
from adapters.xmlsafe import element_path, light_xml, local_name, parse_xml
from adapters.xmlwrapper import keep_wrapper, payload_of, rewrap, wrapper_residue
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.pb.customs_hub.v1 import declaration_pb2, movement_pb2

MovementEvent = movement_pb2.MovementEvent
Residue = declaration_pb2.Residue
D = movement_pb2  # enum values

EXPORTS, IMPORTS = NAMESPACES["inv"], NAMESPACES["ili"]
GATEWAY = "http://www.hmrc.gov.uk/cds/inventorylinking/exportmovement"
INBOUND_WRAPPER = f"{{{GATEWAY}}}InventoryLinkingExportsInboundRequest"

_REQUEST = "exports/inventoryLinkingRequestExternal.xsd"
_RESPONSE = "exports/inventoryLinkingResponseExternal.xsd"


@dataclass(frozen=True)
class Root:
    short: str  # the schema table's name of the root element, e.g. inv:inventoryLinkingQueryRequest
    document: int  # MovementDocument
    schema: str  # file under schemas/inventory-linking


ROOTS = (
    Root("inv:inventoryLinkingMovementRequest", D.MOVEMENT_DOCUMENT_MOVEMENT_REQUEST, _REQUEST),
    Root(
        "inv:inventoryLinkingConsolidationRequest",
        D.MOVEMENT_DOCUMENT_CONSOLIDATION_REQUEST,
        _REQUEST,
    ),
    Root("inv:inventoryLinkingQueryRequest", D.MOVEMENT_DOCUMENT_QUERY_REQUEST, _REQUEST),
    Root("inv:inventoryLinkingMovementResponse", D.MOVEMENT_DOCUMENT_MOVEMENT_RESPONSE, _RESPONSE),
    Root("inv:inventoryLinkingControlResponse", D.MOVEMENT_DOCUMENT_CONTROL_RESPONSE, _RESPONSE),
    Root("inv:inventoryLinkingQueryResponse", D.MOVEMENT_DOCUMENT_QUERY_RESPONSE, _RESPONSE),
    Root(
        "inv:inventoryLinkingMovementTotalsResponse",
        D.MOVEMENT_DOCUMENT_MOVEMENT_TOTALS_RESPONSE,
        _RESPONSE,
    ),
    Root(
        "ili:inventoryLinkingImportsGoodsArrival",
        D.MOVEMENT_DOCUMENT_IMPORTS_GOODS_ARRIVAL,
        "imports/inventoryLinkingImportArriveGoods.xsd",
    ),
    Root(
        "ili:InventoryLinkingImportsValidateMovementRequest",
        D.MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_REQUEST,
        "imports/inventoryLinkingImportValidateMovementRequest.xsd",
    ),
    Root(
        "ili:InventoryLinkingImportsValidateMovementResponse",
        D.MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_RESPONSE,
        "imports/inventoryLinkingImportValidateMovementResponse.xsd",
    ),
)
BY_TAG = {clark(r.short): r for r in ROOTS}
BY_DOCUMENT: dict[int, Root] = {r.document: r for r in ROOTS}
# Only the exports movement request comes inside a gateway wrapper in CDS.
WRAPPED = (clark("inv:inventoryLinkingMovementRequest"),)

# messageCode -> what happened
KINDS_BY_CODE: dict[str, int] = {
    "EAL": D.MOVEMENT_KIND_ARRIVAL,
    "EDL": D.MOVEMENT_KIND_DEPARTURE,
    "EAA": D.MOVEMENT_KIND_ARRIVAL_ADVICE,
    "RET": D.MOVEMENT_KIND_RETROSPECTIVE_ARRIVAL,
    "CST": D.MOVEMENT_KIND_SHUT_CONSOLIDATION,
    "EAC": D.MOVEMENT_KIND_ASSOCIATION,
    "QUE": D.MOVEMENT_KIND_QUERY,
    "EMR": D.MOVEMENT_KIND_TOTALS,
    "ERS": D.MOVEMENT_KIND_DECLARATION_SUMMARY,
}
# documents whose kind does not depend on a code
KINDS_BY_DOCUMENT: dict[int, int] = {
    D.MOVEMENT_DOCUMENT_QUERY_REQUEST: D.MOVEMENT_KIND_QUERY,
    D.MOVEMENT_DOCUMENT_QUERY_RESPONSE: D.MOVEMENT_KIND_QUERY,
    D.MOVEMENT_DOCUMENT_CONTROL_RESPONSE: D.MOVEMENT_KIND_CONTROL,
    D.MOVEMENT_DOCUMENT_IMPORTS_GOODS_ARRIVAL: D.MOVEMENT_KIND_ARRIVAL,
    D.MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_REQUEST: D.MOVEMENT_KIND_VALIDATION,
    D.MOVEMENT_DOCUMENT_IMPORTS_VALIDATE_MOVEMENT_RESPONSE: D.MOVEMENT_KIND_VALIDATION,
}

# xs:dateTime elements. XSD fixes whiteSpace="collapse" for xs:dateTime, so a value followed by a
# newline is valid; libxml2 does not collapse it. Their values are trimmed before validation
# (the codec trims every value it reads anyway).
DATETIME_ELEMENTS = frozenset(
    {"goodsArrivalDateTime", "goodsDepartureDateTime", "dateOfEntry", "shutDate"}
)

_COMMENT = re.compile(rb"<!--.*?-->", re.DOTALL)
_FIRST_TAG = re.compile(rb"<(?![?!])(?:[A-Za-z_][\w.-]*:)?([A-Za-z_][\w.-]*)")

_local = threading.local()


def kind_of(document: int, message_code: str) -> int:
    """The MovementKind of a document with ``message_code`` (unspecified for an unknown code)."""
    by_document = KINDS_BY_DOCUMENT.get(document)
    if by_document is not None:
        return by_document
    return KINDS_BY_CODE.get(message_code.strip(), D.MOVEMENT_KIND_UNSPECIFIED)


class _LocalOnly(etree.Resolver):  # type: ignore[misc]  # lxml is untyped
    """Schema includes resolve inside schemas/inventory-linking or nowhere."""

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        if url is None:
            return None
        path = Path(url.removeprefix("file://")).resolve()
        if INVENTORY_LINKING.resolve() not in path.parents:
            raise TranslationError(
                f"schema include outside schemas/inventory-linking: {url}",
                reason="schema-unavailable",
            )
        return None  # let libxml2 load the local file itself


def schema(file: str) -> etree.XMLSchema:
    """One schema compiled once per thread (a compiled schema keeps its last errors)."""
    compiled: dict[str, etree.XMLSchema] = _local.__dict__.setdefault("compiled", {})
    checker = compiled.get(file)
    if checker is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        parser.resolvers.add(_LocalOnly())
        checker = compiled[file] = etree.XMLSchema(
            etree.parse(str(INVENTORY_LINKING / file), parser)
        )
    return checker


def validate(element: etree._Element, root: Root, source: str) -> None:
    checker = schema(root.schema)
    if checker.validate(element):
        return
    errors = list(checker.error_log)
    error = errors[-1] if errors else None
    line = error.line if error else None
    found = _element_at(element, line) if line else None
    message = (
        (error.message if error else "not valid")
        .replace("{" + EXPORTS + "}", "")
        .replace("{" + IMPORTS + "}", "")
    )
    raise TranslationError(
        f"{source} is not valid against the inventory-linking schema ({root.schema}): {message}",
        reason="schema-invalid",
        line=line,
        column=error.column if error else None,
        path=element_path(found) if found is not None else element_path(element),
    )


def _element_at(root: etree._Element, line: int) -> etree._Element | None:
    for element in root.iter():
        if isinstance(element.tag, str) and int(element.sourceline or 0) == line:
            return element
    return None


def _collapse_datetimes(element: etree._Element) -> None:
    for node in element.iter():
        if (
            isinstance(node.tag, str)
            and node.text
            and not len(node)
            and local_name(node.tag) in DATETIME_ELEMENTS
        ):
            node.text = node.text.strip()


@dataclass(frozen=True)
class CdsMovement:
    """The ``cds-movement`` format."""

    limits: XmlLimits = field(default_factory=XmlLimits)
    format_id: str = "cds-movement"
    media_type: str = "application/xml"
    directions: frozenset[str] = frozenset({"decode", "encode"})
    description: str = (
        "CDS inventory-linking XML: movements (EAL, EDL, EAA, RET), consolidations (CST, EAC), "
        "queries and their responses; imports goods arrival and validate-movement"
    )

    def sniff(self, head: bytes) -> bool:
        """An XML document whose root element is an inventory-linking one (or its gateway
        wrapper): their names all start with inventoryLinking / InventoryLinking."""
        found = _FIRST_TAG.search(_COMMENT.sub(b"", head))
        return found is not None and found.group(1).lower().startswith(b"inventorylinking")

    def light(self, data: bytes) -> bool:
        """At most 32 KiB and 400 tags, as for WCO DM XML; movement documents are under 2 KB."""
        return light_xml(data)

    def decode(self, data: bytes, source: str = "document") -> Message:
        top = parse_xml(data, self.limits, source=source)
        residue: list[Residue] = []
        element = top
        if top.tag == INBOUND_WRAPPER:
            element = payload_of(top, WRAPPED, source)
            residue.append(keep_wrapper(top, element))
        root = BY_TAG.get(element.tag)
        if root is None:
            raise TranslationError(
                f"{source}: expected a CDS inventory-linking document "
                f"({', '.join(local_name(clark(r.short)) for r in ROOTS)}); "
                f"found {local_name(str(element.tag))}",
                reason="unsupported-document",
                line=element.sourceline,
                path=element_path(element),
            )
        _collapse_datetimes(element)
        validate(element, root, source)
        message = MovementEvent()
        decode_element(element, message, root.short, residue)
        message.document = root.document  # type: ignore[assignment]
        message.kind = kind_of(root.document, message.message_code)  # type: ignore[assignment]
        message.residue.extend(residue)
        return message

    def encode(self, message: Message) -> bytes:
        if not isinstance(message, MovementEvent):
            raise TranslationError(
                f"{message.DESCRIPTOR.full_name} has no CDS inventory-linking form",
                reason="unsupported-document",
            )
        try:
            return self._encode(message)
        except (ValueError, TypeError) as exc:
            # lxml refuses control characters and bad attribute names a partner may send
            raise TranslationError(
                f"the message cannot be written as XML: {exc}", reason="invalid-content"
            ) from None

    def _encode(self, message: MovementEvent) -> bytes:
        root = BY_DOCUMENT.get(message.document)
        if root is None:
            raise TranslationError(
                "a movement event must say which document it is (document)",
                reason="invalid-content",
            )
        expected = kind_of(message.document, message.message_code)
        if message.kind not in (D.MOVEMENT_KIND_UNSPECIFIED, expected):
            raise TranslationError(
                f"the movement event's kind {D.MovementKind.Name(message.kind)} does not match "
                f"its document and message code ({D.MovementKind.Name(expected)})",
                reason="invalid-content",
            )
        kept, residue = wrapper_residue(list(message.residue))
        prefix, _ = root.short.split(":", 1)
        element = encode_element(
            message, clark(root.short), root.short, residue, self.limits,
            nsmap={"inv": NAMESPACES[prefix]},
        )  # fmt: skip
        validate(element, root, "translated document")
        top = rewrap(element, kept, self.limits, (INBOUND_WRAPPER,)) if kept else element
        return bytes(etree.tostring(top, xml_declaration=True, encoding="UTF-8"))
