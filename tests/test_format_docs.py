"""Every format's page in docs/formats holds a table of everything it reads, and it is held
against the code: the lists come from the translators' own constants, tables and descriptors,
so a new format, column, element or message type fails here until its page says where it goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from lxml import etree

from adapters import aeocsv, formats, protojson
from adapters.ncts import mapping
from adapters.ncts.schemas import NCTS
from adapters.wco import doctable
from adapters.wco.schema_table import load_table
from hub.core.messages import BODY_TYPES
from hub.pb.customs_hub.v1 import service_pb2

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs" / "formats"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def table_after(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the Markdown table whose header line starts with ``header``."""
    start = text.index(header)
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
    return rows


def section(text: str, heading: str) -> str:
    """From the heading line starting with ``heading`` to the next heading of the same or a
    higher level."""
    level = len(heading.split(" ", 1)[0])
    found = re.search(f"^{re.escape(heading)}.*$", text, re.M)
    assert found, f"no heading {heading!r}"
    end = re.search(f"^#{{1,{level}}} ", text[found.end() :], re.M)
    return text[found.start() : found.end() + end.start()] if end else text[found.start() :]


# --- every format has a page and a row -----------------------------------------------------


@pytest.mark.parametrize("format_id", sorted(formats.BUILTIN))
def test_every_format_has_a_page(format_id: str) -> None:
    assert (DOCS / f"{format_id}.md").is_file(), (
        f"format {format_id} has no page docs/formats/{format_id}.md with the table of "
        "everything it reads and where it goes"
    )


def test_the_formats_table_has_a_row_per_format_linking_its_page() -> None:
    rows = table_after(page("README.md"), "| id | media type |")
    ids = [row[0].strip("`") for row in rows]
    assert sorted(ids) == sorted(formats.BUILTIN), (
        "docs/formats/README.md's table of formats must have one row per format in "
        "adapters/formats.py BUILTIN"
    )
    for row in rows:
        format_id = row[0].strip("`")
        assert f"]({format_id}.md)" in row[-1], f"the row of {format_id} must link {format_id}.md"


# --- wco-xml: the element tables are generated ---------------------------------------------


def test_the_wco_xml_element_tables_are_generated_from_the_schema_table() -> None:
    committed = page("wco-xml.md")
    assert committed == doctable.render_page(committed, doctable.schema_annotations()), (
        "docs/formats/wco-xml.md is stale; run `python -m adapters.wco.doctable`"
    )


def test_the_wco_xml_tables_list_every_element_of_the_schema_table_once() -> None:
    text = page("wco-xml.md")
    listed = re.findall(r"^\| `([a-z]+:[^`]+)` \|", text, re.M)
    table = load_table()
    roots = {"md:MetaData", "dec:Declaration", "res:Response"}
    every = roots | {
        f"{path}/{child}"
        for path, children in table.items()
        if path.split("/", 1)[0] in roots  # the inventory-linking roots are cds-movement's
        for child in children
    }
    assert sorted(listed) == sorted(every)
    goes_to = {row[0].strip("`"): row[-1] for row in _wco_rows(text)}
    assert goes_to["dec:Declaration/dec:FunctionalReferenceID"] == "`functional_reference_id`"
    assert goes_to["res:Response/dec:Declaration"] == "`dec_declaration`"
    assert goes_to[
        "dec:Declaration/dec:GoodsShipment/dec:GovernmentAgencyGoodsItem/dec:Commodity"
    ] == ("`goods_shipment.government_agency_goods_item[].commodity`")


def _wco_rows(text: str) -> Iterator[list[str]]:
    for line in text.splitlines():
        if re.match(r"^\| `[a-z]+:", line):
            yield [cell.strip() for cell in line.strip().strip("|").split(" | ")]


def test_an_element_the_codec_does_not_reach_stops_the_generator() -> None:
    table = dict(load_table())
    table["dec:Declaration"] = (*table["dec:Declaration"], "dec:NotInTheSchema")
    with pytest.raises(ValueError, match="dec:Declaration/dec:NotInTheSchema"):
        doctable.destinations(table)
    assert doctable.destinations(dict(load_table()))["dec:Declaration/dec:ID"] == "`id`"


# --- proto-json: a row per business message type --------------------------------------------


def _proto_json_rows() -> dict[str, str]:
    """Message type -> the key its row must have: the JSON name of its field in
    SubmitRequest.document when proto-json reads it, else a dash."""
    oneof = service_pb2.SubmitRequest.DESCRIPTOR.oneofs_by_name["document"]
    by_type = {
        field.message_type.full_name: field
        for field in oneof.fields
        if field.name in protojson.DOCUMENT_FIELDS
    }
    expected = {}
    for full_name in BODY_TYPES:
        field = by_type.get(full_name)
        expected[full_name] = f"`{field.json_name}`" if field is not None else "–"
    return expected


def test_proto_json_documents_a_key_for_every_message_type() -> None:
    expected = _proto_json_rows()
    rows = table_after(page("proto-json.md"), "| key | message |")
    documented = {row[1].strip("`"): row[0] for row in rows}
    missing = [
        f"| {key} | `{name}` | `protos/{BODY_TYPES[name].DESCRIPTOR.file.name}` |"
        for name, key in expected.items()
        if documented.get(name) != key
    ]
    assert not missing, (
        "docs/formats/proto-json.md, 'Top-level keys', lacks (or has a wrong key in) the "
        "row(s):\n" + "\n".join(missing)
    )
    extra = sorted(set(documented) - set(expected))
    assert not extra, f"proto-json.md documents types the hub does not carry: {extra}"


# --- aeo-csv: a row per column ---------------------------------------------------------------


def test_aeo_csv_documents_every_column_and_the_field_it_fills() -> None:
    rows = table_after(page("aeo-csv.md"), "| column | `AeoStatus` field |")
    documented = {row[0].strip("`"): row for row in rows}
    assert sorted(documented) == sorted(aeocsv.COLUMNS), (
        "docs/formats/aeo-csv.md's Columns table must have one row per column in "
        "adapters/aeocsv.py COLUMNS"
    )
    columns_of = getattr(aeocsv, "_FIELD_COLUMNS")  # noqa: B009 - the translator's own table
    for field in aeocsv.AeoStatus.DESCRIPTOR.fields:
        column = columns_of.get(field.name, field.name)
        assert column in documented, f"AeoStatus.{field.name} has no column"
        assert documented[column][1] == f"`{field.name}`", column
        required = documented[column][2] == "yes"
        assert required == (column in aeocsv.REQUIRED), f"{column}: required or not"


# --- ncts-p6: every element the mapping reads ----------------------------------------------


class _Reading:
    """Stands for an element of an NCTS message and records every path the mapping reads
    below it (find, findall, iterfind, findtext), each relative to the message's root. Every
    element is present, with the text ``text``: once non-empty and once empty, every branch
    that reads something runs."""

    def __init__(self, read: set[str], text: str, path: str = "", tag: str = "") -> None:
        self.read, self.text, self.path, self.tag = read, text, path, tag

    def _at(self, path: str) -> str:
        full = f"{self.path}/{path}" if self.path else path
        self.read.add(full)
        return full

    def find(self, path: str) -> _Reading:
        return _Reading(self.read, self.text, self._at(path))

    def findall(self, path: str) -> list[_Reading]:
        return [self.find(path)]

    def iterfind(self, path: str) -> Iterator[_Reading]:
        return iter(self.findall(path))

    def findtext(self, path: str) -> str:
        self._at(path)
        return self.text


def _paths_read(message: str) -> set[str]:
    read: set[str] = set()
    for text in ("1", ""):
        mapping.control_result(cast(Any, _Reading(read, text, tag=f"{{{NCTS}}}{message}")))
    return read


@pytest.mark.parametrize("message", sorted(getattr(mapping, "_MAPPERS")))  # noqa: B009
def test_ncts_documents_every_element_the_mapping_reads(message: str) -> None:
    text = page("ncts-p6.md")
    mapped = section(text, "## Mapping")
    documented = section(mapped, f"### {message}") + mapped[: mapped.index("### ")]
    read = _paths_read(message)
    missing = sorted(p for p in read if f"`{p}`" not in documented and f"`{p}/" not in documented)
    assert not missing, (
        f"docs/formats/ncts-p6.md, '### {message}' (or the common table above it), does not "
        f"name these paths the mapping reads: {missing}"
    )


REAL_READS: set[str] = set()


class _RecordingElement(etree.ElementBase):  # type: ignore[misc]
    """A real lxml element that records, relative to its document's root, what is read."""

    def _record(self, path: str) -> None:
        names = []
        node = self
        while node.getparent() is not None:
            names.append(etree.QName(node).localname)
            node = node.getparent()
        REAL_READS.add("/".join([*reversed(names), path]))

    def find(self, path: str, namespaces: Any = None) -> Any:
        self._record(path)
        return super().find(path, namespaces)

    def findall(self, path: str, namespaces: Any = None) -> Any:
        self._record(path)
        return super().findall(path, namespaces)

    def iterfind(self, path: str, namespaces: Any = None) -> Any:
        self._record(path)
        return super().iterfind(path, namespaces)

    def findtext(self, path: str, default: Any = None, namespaces: Any = None) -> Any:
        self._record(path)
        return super().findtext(path, default, namespaces)


@pytest.mark.parametrize(
    "fixture", sorted(p.name for p in (ROOT / "tests" / "data" / "ncts").glob("*.xml"))
)
def test_the_stand_in_records_what_the_mapping_reads_of_real_messages(fixture: str) -> None:
    """On the real fixtures, every path the mapping reads is one the stand-in above recorded
    (so the documentation test sees all the mapping reads)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    parser.set_element_class_lookup(etree.ElementDefaultClassLookup(element=_RecordingElement))
    root = etree.parse(str(ROOT / "tests" / "data" / "ncts" / fixture), parser).getroot()
    REAL_READS.clear()
    result = mapping.control_result(root)
    assert result.control_id
    assert "messageIdentification" in REAL_READS
    recorded = _paths_read(etree.QName(root).localname)
    assert recorded >= REAL_READS, sorted(REAL_READS - recorded)


# --- wco-xml: the tables say where a real document's values are -----------------------------

SAMPLES = (
    "TT_IM001b/TT_IM001b.xml",
    "TT_IM189a/Example_Notifications/04_DMSCLE.xml",
)


def _values_at(message: Any, field_path: str) -> list[str]:
    """Every value at a documented field path (``a.b[].c``), through every repeated field."""
    found = [message]
    for step in field_path.split("."):
        name = step.removesuffix("[]")
        found = [
            value
            for holder in found
            for value in (getattr(holder, name) if step.endswith("[]") else [getattr(holder, name)])
        ]
    return [str(value) for value in found]


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_value_of_a_cds_sample_is_where_the_wco_xml_tables_say(sample: str) -> None:
    from adapters.wco.codec import short_name
    from adapters.wco.translator import WcoXml, restore_namespaces
    from adapters.xmlsafe import parse_xml
    from hub.core.limits import XmlLimits
    from tests.testdata import CDS_SAMPLES

    data = (CDS_SAMPLES / sample).read_bytes()
    message = WcoXml().decode(data, sample)
    goes_to = {row[0].strip("`"): row[-1] for row in _wco_rows(page("wco-xml.md"))}
    root = restore_namespaces(parse_xml(data, XmlLimits(), source=sample))
    payload = root  # a Declaration or Response's table starts at itself, also in a MetaData
    if str(root.tag).endswith("}MetaData"):
        payload = next(c for c in root if str(c.tag).endswith(("}Declaration", "}Response")))
    kept = b"".join(r.xml for r in message.residue)  # type: ignore[attr-defined]
    checked = 0
    for element in root.iter():
        text = (element.text or "").strip()
        if not isinstance(element.tag, str) or len(element) or not text:
            continue
        steps = []
        node = element
        while node is not None:
            steps.append(short_name(str(node.tag)))
            if node is payload:
                break
            node = node.getparent()
        path = "/".join(str(s) for s in reversed(steps))
        field_path = re.findall(r"`([a-z_.\[\]]+)`", goes_to[path])[0]
        values = _values_at(message, field_path)
        assert text in values or text.encode() in kept, (path, field_path)
        checked += 1
    assert checked >= 10
