"""WCO DM XML documents <-> ``GoodsDeclaration`` / ``Response``.

Reading: hardened parse -> namespaces restored where a notification was published without
them -> schema validation with lxml (schemas from ``schemas/wco`` only, compiled once per
process) -> codec. Writing: codec -> the same schema validation -> bytes.

Accepted documents: ``md:MetaData`` wrapping one ``Declaration`` (DEC-DMS; cancellations
13/INV are checked against the CANCEL schema) or one ``Response`` (RES-DMS), or a bare
``Declaration`` or ``Response``; any of them inside the MDG gateway's
``submitDeclarationRequest``, whose ``requestCommon`` and the rest of the wrapper are kept as
residue (adapters/xmlwrapper.py) and written back around the document.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf.message import Message
from lxml import etree

from adapters.wco.codec import METADATA_PATH, decode_element, encode_element, short_name
from adapters.wco.schema_table import NAMESPACES, SCHEMAS, clark, load_table, wco_pointer
from adapters.xmlsafe import element_path, light_xml, local_name, parse_xml
from adapters.xmlwrapper import keep_wrapper, payload_of, rewrap, wrapper_residue
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.pb.customs_hub.v1 import declaration_pb2, response_pb2

GoodsDeclaration = declaration_pb2.GoodsDeclaration
Response = response_pb2.Response
Residue = declaration_pb2.Residue

MD, DEC, RES = NAMESPACES["md"], NAMESPACES["dec"], NAMESPACES["res"]
METADATA = clark("md:MetaData")
DECLARATION = clark("dec:Declaration")
RESPONSE = clark("res:Response")
# The MDG gateway's envelope around a declaration submitted to CDS (no published schema).
SUBMIT_WRAPPER = (
    "{http://uk/gov/hmrc/mdg/declarationmanagement/submitdeclaration/request/schema/v1}"
    "submitDeclarationRequest"
)

# (schema key, file under schemas/wco)
SCHEMA_FILES = {
    "dec": "dec_driver.xsd",
    "cancel": "cancel_driver.xsd",
    "res": "res_driver.xsd",
    "dec-bare": "declaration/WCO_DEC_2_DMS.xsd",
    "cancel-bare": "declaration/CANCEL.xsd",
    "res-bare": "notification/WCO_RES_2_DMS.xsd",
}


class _LocalOnly(etree.Resolver):  # type: ignore[misc]  # lxml is untyped
    """Schema imports resolve inside schemas/wco or nowhere."""

    def resolve(self, url: str | None, pubid: str | None, context: object) -> object:
        if url is None:
            return None
        path = Path(url.removeprefix("file://")).resolve()
        if SCHEMAS.resolve() not in path.parents:
            raise TranslationError(
                f"schema import outside schemas/: {url}", reason="schema-unavailable"
            )
        return None  # let libxml2 load the local file itself


# A compiled schema keeps the errors of its last validation in its error_log: shared between
# threads, one thread's refusal could be reported with another's errors, or none.
_local = threading.local()


def schema(key: str) -> etree.XMLSchema:
    """A schema set compiled once per thread that validates with it."""
    compiled: dict[str, etree.XMLSchema] = _local.__dict__.setdefault("compiled", {})
    checker = compiled.get(key)
    if checker is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        parser.resolvers.add(_LocalOnly())
        document = etree.parse(str(SCHEMAS / SCHEMA_FILES[key]), parser)
        checker = compiled[key] = etree.XMLSchema(document)
    return checker


def validate(root: etree._Element, key: str, source: str) -> None:
    checker = schema(key)
    if checker.validate(root):
        return
    errors = list(checker.error_log)
    error = errors[-1] if errors else None
    line = error.line if error else None
    element = _element_at(root, line) if line else None
    path = element_path(element) if element is not None else None
    message = (
        (error.message if error else "not valid")
        .replace("{" + DEC + "}", "")
        .replace("{" + RES + "}", "")
        .replace("{" + MD + "}", "")
    )
    raise TranslationError(
        f"{source} is not valid against the WCO DM schema ({SCHEMA_FILES[key]}): {message}",
        reason="schema-invalid",
        line=line,
        column=error.column if error else None,
        path=path,
        pointer=pointer_of(element) if element is not None else None,
    )


def _element_at(root: etree._Element, line: int) -> etree._Element | None:
    for element in root.iter():
        if isinstance(element.tag, str) and int(element.sourceline or 0) == line:
            return element
    return None


def pointer_of(element: etree._Element) -> str | None:
    """The WCO class-id chain (42A/67A/68A/...) of an element, or of its nearest known
    ancestor when the element itself is not in the schema."""
    steps: list[str] = []
    node: etree._Element | None = element
    while node is not None and node.tag != METADATA:
        name = short_name(str(node.tag))
        steps = [name or "?", *steps]
        node = node.getparent()
    while steps and "?" in steps:
        steps = steps[: steps.index("?")]
    known = "/".join(steps)
    while known and wco_pointer(known) is None:
        known = known.rsplit("/", 1)[0] if "/" in known else ""
    return wco_pointer(known) if known else None


@dataclass(frozen=True)
class WcoXml:
    """The ``wco-xml`` format."""

    limits: XmlLimits = field(default_factory=XmlLimits)
    format_id: str = "wco-xml"
    media_type: str = "application/xml"
    directions: frozenset[str] = frozenset({"decode", "encode"})
    description: str = (
        "WCO Data Model 3.x XML: CDS declarations (bare, in MetaData or submitDeclarationRequest) "
        "and RES-DMS notifications"
    )

    def light(self, data: bytes) -> bool:
        """At most 32 KiB and 400 tags (xmlsafe.light_xml)."""
        return light_xml(data)

    def decode(self, data: bytes, source: str = "document") -> Message:
        root = parse_xml(data, self.limits, source=source)
        residue: list[Residue] = []
        if root.tag == SUBMIT_WRAPPER:
            payload = payload_of(root, (METADATA, DECLARATION, RESPONSE), source)
            residue.append(keep_wrapper(root, payload))
            root = payload
        else:
            root = restore_namespaces(root)
        wrapped = root.tag == METADATA
        payloads = (
            [c for c in root if isinstance(c.tag, str) and not c.tag.startswith(f"{{{MD}}}")]
            if wrapped
            else [root]
        )
        kinds = {p.tag for p in payloads}
        if kinds == {DECLARATION} and len(payloads) == 1:
            message: Message = GoodsDeclaration()
            path, key = "dec:Declaration", "dec"
        elif kinds == {RESPONSE}:
            message, path, key = Response(), "res:Response", "res"
        else:
            found = ", ".join(sorted(local_name(str(t)) for t in kinds)) or "nothing"
            raise TranslationError(
                f"{source}: expected one WCO DM Declaration or one or more Responses"
                f"{' inside MetaData' if wrapped else ''}; found {found}",
                reason="unsupported-document",
                line=root.sourceline,
                path=element_path(root),
            )
        if wrapped:
            metadata = message.metadata  # type: ignore[attr-defined]
            decode_element(root, metadata, "md:MetaData", residue, METADATA_PATH, tuple(payloads))
            metadata.SetInParent()
        decode_element(payloads[0], message, path, residue)
        message.residue.extend(residue)  # type: ignore[attr-defined]
        for payload in payloads[1:]:
            further = message.further_responses.add()  # type: ignore[attr-defined]
            further_residue: list[Residue] = []
            decode_element(payload, further, path, further_residue)
            further.residue.extend(further_residue)
        # Validated after decoding, which reads the function and type codes that choose the
        # schema (cancellations 13/INV have their own); nothing decoded leaves before this.
        if isinstance(message, GoodsDeclaration) and _is_cancellation_message(message):
            key = "cancel"
        validate(root, key if wrapped else f"{key}-bare", source)
        return message

    def encode(self, message: Message) -> bytes:
        try:
            return self._encode(message)
        except (ValueError, TypeError) as exc:
            # lxml refuses control characters, non-characters and bad attribute names; a
            # message from a partner may carry any of them
            raise TranslationError(
                f"the message cannot be written as XML: {exc}", reason="invalid-content"
            ) from None

    def _encode(self, message: Message) -> bytes:
        further: list[Message] = []
        if isinstance(message, GoodsDeclaration):
            nsmap: dict[str | None, str] = {None: DEC}
            qname, path = DECLARATION, "dec:Declaration"
            key = "cancel" if _is_cancellation_message(message) else "dec"
        elif isinstance(message, Response):
            qname, path, key = RESPONSE, "res:Response", "res"
            nsmap = {None: RES}
            further = list(message.further_responses)
        else:
            raise TranslationError(
                f"{message.DESCRIPTOR.full_name} has no WCO DM XML form",
                reason="unsupported-document",
            )
        if further and not message.HasField("metadata"):
            raise TranslationError(
                "several Responses can only be written inside a MetaData wrapper",
                reason="unsupported-document",
            )
        kept, residue = wrapper_residue(list(message.residue))
        payloads = [encode_element(message, qname, path, residue, self.limits, nsmap=nsmap)]
        for extra in further:
            payloads.append(
                encode_element(extra, qname, path, list(extra.residue), self.limits, nsmap=nsmap)  # type: ignore[attr-defined]
            )
        root = payloads[0]
        if message.HasField("metadata"):
            root = encode_element(
                message.metadata,
                METADATA,
                "md:MetaData",
                residue,
                self.limits,
                holder=METADATA_PATH,
                nsmap={"md": MD, None: nsmap[None]},
                payloads=tuple(payloads),
            )
        validate(root, key if root is not payloads[0] else f"{key}-bare", "translated document")
        if kept is not None:
            root = rewrap(root, kept, self.limits, (SUBMIT_WRAPPER,))
        return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _is_cancellation_message(declaration: GoodsDeclaration) -> bool:
    return declaration.function_code == "13" and declaration.type_code == "INV"


def restore_namespaces(root: etree._Element) -> etree._Element:
    """Give a namespace-stripped MetaData/Response document its WCO namespaces back.

    CDS publishes most notifications with namespaces stripped. Each element's namespace is
    read off the schema table by its position: the root, then each child by local name among
    its parent's schema children. Where a local name could mean two elements (RES
    ``Declaration`` and DEC ``Declaration`` under ``Response``) the one whose children fit is
    taken. Documents that already use namespaces are returned unchanged.
    """
    if etree.QName(root).namespace is not None:
        return root
    table = load_table()
    roots = {
        "MetaData": "md:MetaData",
        "Response": "res:Response",
        "Declaration": "dec:Declaration",
    }
    short = roots.get(str(root.tag))
    if short is None:
        return root  # reported as unsupported by the caller

    def rename(element: etree._Element, short_name: str, path: str) -> None:
        element.tag = clark(short_name)
        children = table.get(path, ())
        if short_name == "md:MetaData":
            children = (*children, "res:Response", "dec:Declaration")
        for child in element:
            if not isinstance(child.tag, str) or etree.QName(child).namespace is not None:
                continue
            candidates = [c for c in children if c.split(":", 1)[1] == child.tag]
            if len(candidates) > 1:
                fitting = [c for c in candidates if _fits(child, table.get(f"{path}/{c}", ()))]
                candidates = fitting[:1] or candidates[:1]
            if not candidates:
                continue  # left without a namespace: validation will name it
            chosen = candidates[0]
            child_path = (
                chosen
                if short_name == "md:MetaData" and not chosen.startswith("md:")
                else f"{path}/{chosen}"
            )
            rename(child, chosen, child_path)

    rename(root, short, short)
    etree.cleanup_namespaces(root)
    return root


def _fits(element: etree._Element, children: tuple[str, ...]) -> bool:
    names = {c.split(":", 1)[1] for c in children}
    return all(not isinstance(c.tag, str) or c.tag in names for c in element)
