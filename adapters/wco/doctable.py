"""The element tables of docs/formats/wco-xml.md: every element of the WCO DM schemas the
``wco-xml`` translator knows, and where it goes in the protobuf message.

Made from what the translator itself runs on, so the page cannot drift from the code: the
elements and their order from the schema table (schema_table.json), the field that holds each
element from the codec's own lookup (``codec.slots``, as decoding and encoding use it), the WCO
ids from the table; only the WCO names, formats and occurrences, which the translator never
needs, are read from the schemas' annotations (with xmlschema, as the schema table is built).

``python -m adapters.wco.doctable`` rewrites the tables between their markers in the page;
tests/test_format_docs.py fails when the committed page differs from what this makes.

What it must never do: describe an element the schema table does not hold, or leave one out
(``destinations`` raises when the codec's walk and the table disagree).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from adapters.wco.codec import COMPLEX, LEAF, LEAF_ATTRIBUTES, slots
from adapters.wco.schema_table import ROOTS, SCHEMAS, clark, load_table, load_wco_ids, short
from hub.pb.customs_hub.v1 import declaration_pb2, response_pb2

PAGE = Path(__file__).resolve().parents[2] / "docs" / "formats" / "wco-xml.md"
COMMAND = "python -m adapters.wco.doctable"

# (root element, a message of the kind it is read into, field path of that message's fields)
SECTIONS: tuple[tuple[str, Message, str], ...] = (
    ("md:MetaData", declaration_pb2.DocumentMetaData(), "metadata"),
    ("dec:Declaration", declaration_pb2.GoodsDeclaration(), ""),
    ("res:Response", response_pb2.Response(), ""),
)
WCO_ROOTS = frozenset(root for root, _, _ in SECTIONS)
ROOT_DESTINATIONS = {
    "md:MetaData": "`metadata` of the `GoodsDeclaration` or first `Response`",
    "dec:Declaration": "the `GoodsDeclaration` itself",
    "res:Response": "the `Response` itself; in a MetaData, the second and later ones are "
    "`further_responses[]`",
}
RESIDUE = "`residue`"
INSIDE_RESIDUE = "`residue`, inside its parent"


@dataclass(frozen=True)
class Annotation:
    """What the schema says of an element beyond its place: for the reader, not the codec."""

    name: str
    format: str
    occurs: str


def _documented(element: Any, tag: str) -> str:
    annotation = element.annotation
    for documentation in annotation.documentation if annotation else ():
        for node in documentation.iter():
            if isinstance(node.tag, str) and node.tag.endswith("}" + tag) and node.text:
                return " ".join(node.text.split())
    return ""


def schema_annotations() -> dict[str, Annotation]:
    """Table path -> WCO name, format and occurrence, read from schemas/wco (about 2 s)."""
    import xmlschema  # generation only, as for the schema table

    found: dict[str, Annotation] = {}

    def walk(element: Any, path: str, depth: int) -> None:
        most = "n" if element.max_occurs is None else str(element.max_occurs)
        found[path] = Annotation(
            _documented(element, "WCOName"),
            _documented(element, "WCOFormat"),
            f"{element.min_occurs}..{most}",
        )
        xsd_type = element.type
        if xsd_type.is_simple() or xsd_type.has_simple_content() or depth > 40:
            return
        for child in xsd_type.content.iter_elements():
            if getattr(child, "name", None):
                walk(child, f"{path}/{short(child.name)}", depth + 1)

    for driver, root in ROOTS:
        if root not in WCO_ROOTS:  # the inventory-linking roots are cds-movement's page
            continue
        schema = xmlschema.XMLSchema(str(SCHEMAS / driver))
        walk(schema.maps.elements[clark(root)], root, 0)
    return found


def _leaf(field_path: str, descriptor: Descriptor) -> str:
    attributes = "".join(
        f"; `@{attribute}` → `{field_path}.{name}`"
        for name, attribute in LEAF_ATTRIBUTES[descriptor.name].items()
    )
    return f"`{field_path}.value`{attributes}"


def destinations(table: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Table path -> where the element goes, for every element of the table.

    Pure: walks the table with the codec's slots. Raises ValueError when an element of the
    table is not reached, or a leaf element has children the codec does not read."""
    out: dict[str, str] = dict(ROOT_DESTINATIONS)

    def inside_residue(path: str) -> None:
        for child in table.get(path, ()):
            out[f"{path}/{child}"] = INSIDE_RESIDUE
            inside_residue(f"{path}/{child}")

    def walk(path: str, descriptor: Descriptor, field_path: str) -> None:
        for slot in slots(path, descriptor):
            child = f"{path}/{slot.short}"
            if slot.field is None:
                out[child] = RESIDUE
                inside_residue(child)
                continue
            here = f"{field_path}.{slot.name}" if field_path else slot.name
            here += "[]" if slot.repeated else ""
            message = slot.field.message_type
            if message is None:
                out[child] = f"`{here}`"
            elif slot.kind == COMPLEX:
                out[child] = f"`{here}`"
                walk(child, message, here)
            elif slot.kind == LEAF:
                inner = table.get(child, ())
                if inner:  # <AcceptanceDateTime><DateTimeString formatCode=..>
                    if len(inner) != 1:
                        raise ValueError(f"{child}: a leaf with children {inner}")
                    out[child] = f"`{here}`"
                    out[f"{child}/{inner[0]}"] = _leaf(here, message)
                else:
                    out[child] = _leaf(here, message)

    for root, message, field_path in SECTIONS:
        walk(root, cast(Descriptor, message.DESCRIPTOR), field_path)
    every = set(ROOT_DESTINATIONS) | {
        f"{p}/{c}"
        for p, children in table.items()
        if p.split("/", 1)[0] in WCO_ROOTS
        for c in children
    }
    missed = sorted(every - set(out))
    if missed:
        raise ValueError(f"elements of the schema table not reached: {missed[:5]}")
    return out


def _ordered(table: dict[str, tuple[str, ...]], root: str) -> list[str]:
    """The root and its descendants, depth first in schema order."""
    paths = [root]
    for child in table.get(root, ()):
        paths.extend(_ordered(table, f"{root}/{child}"))
    return paths


def markdown(
    table: dict[str, tuple[str, ...]],
    wco_ids: dict[str, str],
    notes: dict[str, Annotation],
    root: str,
) -> str:
    """The table of one root element's elements."""
    goes = destinations(table)
    lines = [
        "| element | occurs | WCO id | WCO name | format | goes to |",
        "|---|---|---|---|---|---|",
    ]
    for path in _ordered(table, root):
        note = notes.get(path, Annotation("", "", ""))
        cells = (
            f"`{path}`",
            note.occurs,
            wco_ids.get(path, ""),
            note.name.replace("|", "/"),
            note.format,
            goes[path],
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def begin_marker(root: str) -> str:
    return f"<!-- {root}: {COMMAND} -->\n"


def end_marker(root: str) -> str:
    return f"<!-- /{root} -->"


def render_page(page: str, notes: dict[str, Annotation]) -> str:
    """``page`` with the table of every section replaced by a fresh one."""
    table, wco_ids = load_table(), load_wco_ids()
    for root, _, _ in SECTIONS:
        begin, end = begin_marker(root), end_marker(root)
        head, found, rest = page.partition(begin)
        if not found or end not in rest:
            raise ValueError(f"{PAGE.name} has no {begin.strip()} ... {end} markers")
        rest = rest[rest.index(end) :]
        page = head + begin + markdown(table, wco_ids, notes, root) + rest
    return page


if __name__ == "__main__":
    fresh = render_page(PAGE.read_text(encoding="utf-8"), schema_annotations())
    temporary = PAGE.with_suffix(".md.tmp")
    temporary.write_text(fresh, encoding="utf-8")
    temporary.replace(PAGE)
    print(f"wrote {PAGE}", file=sys.stderr)
