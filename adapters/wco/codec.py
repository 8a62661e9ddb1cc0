"""Generic WCO DM XML <-> protobuf codec, driven by the schema table and message descriptors.

Each protobuf message stands for one WCO class and each field for one element, named in
snake_case after it (``FunctionalReferenceID`` -> ``functional_reference_id``). The codec
matches children by namespace URI and local name against the schema table, never by prefix.
Whatever no typed field can hold exactly (an unknown or empty element, an attribute such as
``listID`` or ``xsi:schemaLocation``, a second occurrence of a single field) goes into the
root message's ``residue`` with where it was, so that XML -> protobuf -> XML is lossless.

Values are trimmed: CDS sends code values such as ``13`` followed by a newline and spaces.

Pure: elements and messages in, elements and messages out; no files, no sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from lxml import etree

from adapters.wco.schema_table import NAMESPACES, PREFIXES, clark, load_table
from adapters.xmlsafe import XSI, check_schema_location, parse_xml
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.pb.customs_hub.v1 import declaration_pb2

Residue = declaration_pb2.Residue
METADATA_PATH = "^metadata"
SCHEMA_LOCATION_ATTRIBUTES = frozenset(
    {f"{{{XSI}}}schemaLocation", f"{{{XSI}}}noNamespaceSchemaLocation"}
)
DATETIME = "DateTimeString"
# Messages that stand for one element with text content and attributes.
LEAF_ATTRIBUTES: Mapping[str, Mapping[str, str]] = {
    "DateTimeString": {"format_code": "formatCode"},
    "Amount": {"currency_id": "currencyID"},
    "Measure": {"unit_code": "unitCode"},
}
# Where two children of one element share a local name, the field is named explicitly.
FIELD_OVERRIDES: Mapping[tuple[str, str], str] = {
    ("res:Response", "dec:Declaration"): "dec_declaration",
    # a control response's <ucr> is a whole ucrBlock (movement.proto MovementUcr)
    ("inv:inventoryLinkingControlResponse", "inv:ucr"): "control_ucr",
}


def squash(name: str) -> str:
    return name.replace("_", "").lower()


SCALAR, LEAF, COMPLEX = 0, 1, 2


@dataclass(frozen=True)
class Slot:
    """One child position of a schema element, with everything the codec needs precomputed
    (the hot path visits every element of every document)."""

    short: str  # "dec:GoodsShipment"
    qname: str  # Clark notation
    field: FieldDescriptor | None
    path: str = ""  # the child's own table path
    name: str = ""  # field name
    repeated: bool = False
    kind: int = SCALAR


@cache
def slots(path: str, descriptor: Descriptor) -> tuple[Slot, ...]:
    """The schema's children of ``path``, in order, each with the field that holds it."""
    children = load_table().get(path, ())
    by_squash = {
        squash(f.name): f for f in descriptor.fields if f.name not in ("residue", "metadata")
    }
    out = []
    for short in children:
        override = FIELD_OVERRIDES.get((path, short))
        local = short.split(":", 1)[1]
        fd = descriptor.fields_by_name.get(override) if override else by_squash.get(squash(local))
        if fd is None:
            out.append(Slot(short, clark(short), None))
            continue
        kind = SCALAR
        if fd.message_type is not None:
            kind = LEAF if fd.message_type.name in LEAF_ATTRIBUTES else COMPLEX
        out.append(Slot(short, clark(short), fd, f"{path}/{short}", fd.name, fd.is_repeated, kind))
    return tuple(out)


@cache
def slots_by_name(path: str, descriptor: Descriptor) -> dict[str, tuple[int, Slot]]:
    """Field name -> (position in schema order, slot)."""
    found: dict[str, tuple[int, Slot]] = {}
    for rank, slot in enumerate(slots(path, descriptor)):
        if slot.field is not None:
            found.setdefault(slot.name, (rank, slot))
    return found


def _rank(entry: tuple[int, Slot, object]) -> int:
    return entry[0]


@cache
def slot_index(path: str, descriptor: Descriptor) -> dict[str, Slot]:
    return {s.qname: s for s in slots(path, descriptor)}


def _is_leaf(descriptor: Descriptor) -> bool:
    return descriptor.name in LEAF_ATTRIBUTES


def _text(element: etree._Element) -> str:
    return (element.text or "").strip()


@dataclass
class _Decoder:
    residue: list[Residue] = field(default_factory=list)

    def keep_element(self, holder_path: str, index: int, element: etree._Element) -> None:
        xml = etree.tostring(element, with_tail=False)
        self.residue.append(Residue(path=holder_path, index=index, xml=xml))

    def keep_attributes(self, holder_path: str, element: etree._Element, skip: set[str]) -> None:
        for name, value in element.attrib.items():
            if name not in skip:
                self.residue.append(
                    Residue(path=holder_path, attribute=str(name), value=str(value))
                )

    def decode(
        self,
        element: etree._Element,
        message: Message,
        path: str,
        holder: str,
        payloads: frozenset[etree._Element] = frozenset(),
    ) -> None:
        if element.keys():
            self.keep_attributes(holder, element, set())
        index_of = slot_index(path, message.DESCRIPTOR)
        counts: dict[str, int] = {}
        seen: set[str] = set()  # single scalar fields already set (cheaper than getattr)
        for index, child in enumerate(element):
            if payloads and child in payloads:  # a set: linear in the number of payloads
                continue
            slot = index_of.get(child.tag)
            if slot is None:
                self.keep_element(holder, index, child)
                continue
            kind = slot.kind
            if kind == SCALAR and not slot.repeated:
                # the common case, inlined: a single text element such as <TypeCode>IMD</TypeCode>
                text = child.text
                name = slot.name
                if (
                    text
                    and (text := text.strip())
                    and name not in seen
                    and not len(child)
                    and not child.keys()
                ):
                    seen.add(name)
                    setattr(message, name, text)
                    continue
                self.keep_element(holder, index, child)
                continue
            if kind == COMPLEX:  # inlined too: a WCO class such as <GoodsShipment>
                name = slot.name
                if slot.repeated:
                    target = getattr(message, name).add()
                    n = counts.get(name, 0)
                    counts[name] = n + 1
                    step = f"{name}[{n}]"
                elif message.HasField(name):
                    self.keep_element(holder, index, child)
                    continue
                else:
                    target = getattr(message, name)
                    step = name
                self.decode(child, target, slot.path, f"{holder}/{step}" if holder else step)
                target.SetInParent()
                continue
            if (
                slot is None
                or slot.field is None
                or not self._place(child, message, slot, holder, counts)
            ):
                self.keep_element(holder, index, child)

    def _place(
        self,
        child: etree._Element,
        message: Message,
        slot: Slot,
        holder: str,
        counts: dict[str, int],
    ) -> bool:
        name = slot.name
        if slot.kind == SCALAR:
            text = child.text
            if len(child) or child.attrib or not text or not (text := text.strip()):
                return False  # empty, attributed or structured: kept verbatim as residue
            if slot.repeated:
                getattr(message, name).append(text)
            elif getattr(message, name):
                return False  # a second occurrence of a single element
            else:
                setattr(message, name, text)
            return True
        if not slot.repeated and message.HasField(name):
            return False
        fd = slot.field
        if slot.kind == LEAF:
            leaf = self._leaf_value(child, fd.message_type)  # type: ignore[union-attr,arg-type]
            if leaf is None:
                return False
            target = getattr(message, name).add() if slot.repeated else getattr(message, name)
            for leaf_field, value in leaf.items():
                setattr(target, leaf_field, value)
            return True
        target = getattr(message, name).add() if slot.repeated else getattr(message, name)
        step = name
        if slot.repeated:
            n = counts.get(name, 0)
            counts[name] = n + 1
            step = f"{name}[{n}]"
        self.decode(child, target, slot.path, f"{holder}/{step}" if holder else step)
        target.SetInParent()
        return True

    @staticmethod
    def _leaf_value(element: etree._Element, descriptor: Descriptor) -> dict[str, str] | None:
        """Text and attributes of a leaf element, or None when it does not fit exactly."""
        attributes = LEAF_ATTRIBUTES[descriptor.name]
        if descriptor.name == DATETIME:
            # <AcceptanceDateTime><DateTimeString formatCode="304">...</DateTimeString></...>
            if len(element) != 1 or element.attrib or _text(element):
                return None
            element = element[0]
            if etree.QName(element).localname != DATETIME:
                return None
        if len(element) or not _text(element):
            return None
        values = {"value": _text(element)}
        for attr in element.attrib:
            fd_name = next((f for f, a in attributes.items() if a == attr), None)
            if fd_name is None:
                return None
            values[fd_name] = str(element.attrib[attr])
        return values


def decode_element(
    element: etree._Element,
    message: Message,
    path: str,
    residue: list[Residue],
    holder: str = "",
    payloads: tuple[etree._Element, ...] = (),
) -> None:
    """Decode ``element`` into ``message``; ``payloads`` (wrapped documents) are skipped."""
    _Decoder(residue).decode(element, message, path, holder, frozenset(payloads))


@dataclass
class _Encoder:
    residue: Mapping[str, list[Residue]]
    limits: XmlLimits
    datetime_namespace: str
    residue_bytes: int = 0

    def encode(
        self,
        message: Message,
        element: etree._Element,
        path: str,
        holder: str,
        payloads: tuple[etree._Element, ...] = (),
    ) -> None:
        # Only the fields that are set (ListFields, in C), put into schema order: most of a
        # WCO class's hundred-odd optional children are absent from any one declaration.
        by_name = slots_by_name(path, message.DESCRIPTOR)
        present = []
        for fd, value in message.ListFields():
            entry = by_name.get(fd.name)
            if entry is not None:
                present.append((entry[0], entry[1], value))
        if len(present) > 1:
            present.sort(key=_rank)
        for _, slot, value in present:
            if slot.kind == SCALAR:
                for text in value if slot.repeated else (value,):
                    etree.SubElement(element, slot.qname).text = text
                continue
            for n, sub in enumerate(value if slot.repeated else (value,)):
                child = etree.SubElement(element, slot.qname)
                if slot.kind == LEAF:
                    self._leaf(sub, child, path, slot)
                    continue
                step = f"{slot.name}[{n}]" if slot.repeated else slot.name
                self.encode(sub, child, slot.path, f"{holder}/{step}" if holder else step)
        for payload in payloads:
            element.append(payload)
        self.restore(element, holder)

    def _leaf(self, sub: Message, child: etree._Element, path: str, slot: Slot) -> None:
        target = child
        if sub.DESCRIPTOR.name == DATETIME:
            inner = load_table().get(f"{path}/{slot.short}", ())
            target = etree.SubElement(child, clark(inner[0]) if inner else self.datetime_namespace)
        target.text = getattr(sub, "value")  # noqa: B009 - leaf messages all have value
        for fd_name, attr in LEAF_ATTRIBUTES[sub.DESCRIPTOR.name].items():
            value = getattr(sub, fd_name)
            if value:
                target.set(attr, value)

    def restore(self, element: etree._Element, holder: str) -> None:
        """Put preserved attributes and elements back where they were."""
        kept_here = self.residue.get(holder)
        if not kept_here:
            return
        # Residue may come from a partner: the same policy as any XML the hub reads applies,
        # and all of a document's residue together stays within the size limit.
        for residue in sorted(kept_here, key=lambda r: (bool(r.xml), r.index)):
            if residue.attribute:
                if residue.attribute in SCHEMA_LOCATION_ATTRIBUTES:
                    check_schema_location(
                        residue.value,
                        "preserved residue",
                        pairs=residue.attribute == f"{{{XSI}}}schemaLocation",
                    )
                element.set(residue.attribute, residue.value)
            else:
                self.residue_bytes += len(residue.xml)
                if self.residue_bytes > self.limits.max_bytes:
                    raise TranslationError(
                        f"preserved residue exceeds {self.limits.max_bytes} bytes",
                        reason="limit-exceeded",
                    )
                kept = parse_xml(residue.xml, self.limits, source="preserved residue")
                element.insert(residue.index, kept)


def encode_element(
    message: Message,
    qname: str,
    path: str,
    residue: list[Residue],
    limits: XmlLimits,
    holder: str = "",
    nsmap: Mapping[str | None, str] | None = None,
    payloads: tuple[etree._Element, ...] = (),
) -> etree._Element:
    by_holder: dict[str, list[Residue]] = {}
    for r in residue:
        by_holder.setdefault(r.path, []).append(r)
    element = etree.Element(qname, nsmap=dict(nsmap or {}))
    encoder = _Encoder(by_holder, limits, clark("dds:DateTimeString"))
    encoder.encode(message, element, path, holder, payloads)
    return element


def short_name(qname: str) -> str | None:
    if not qname.startswith("{"):
        return None
    uri, local = qname[1:].split("}", 1)
    prefix = PREFIXES.get(uri)
    return f"{prefix}:{local}" if prefix else None


__all__ = ["METADATA_PATH", "NAMESPACES", "TranslationError", "decode_element", "encode_element"]
