"""The element order of the WCO DM and CDS inventory-linking schemas, as a table the
translators read at run time.

For each complex element path (``dec:Declaration/dec:GoodsShipment``...) the table lists its
child elements in schema sequence order, as ``prefix:LocalName`` with the short prefixes of
``NAMESPACES``. Writing XML in this order is what makes a translated document valid again, and
reading with it is how namespace-stripped notifications are restored unambiguously.

The table is generated from ``schemas/wco`` and ``schemas/inventory-linking`` with xmlschema
(``python -m adapters.wco.schema_table``) and committed as ``schema_table.json``; a test fails
when it is stale. At run time only the JSON is read: building the schemas with xmlschema takes
a few seconds, reading the JSON a few milliseconds.
"""

from __future__ import annotations

import json
import sys
from functools import cache
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SCHEMAS = HERE.parents[1] / "schemas" / "wco"
INVENTORY_LINKING = HERE.parents[1] / "schemas" / "inventory-linking"
TABLE_FILE = HERE / "schema_table.json"

NAMESPACES = {
    "md": "urn:wco:datamodel:WCO:DocumentMetaData-DMS:2",
    "mds": "urn:wco:datamodel:WCO:MetaData_DS-DMS:2",
    "dec": "urn:wco:datamodel:WCO:DEC-DMS:2",
    "dds": "urn:wco:datamodel:WCO:Declaration_DS:DMS:2",
    "res": "urn:wco:datamodel:WCO:RES-DMS:2",
    "rds": "urn:wco:datamodel:WCO:Response_DS:DMS:2",
    # CDS inventory linking (adapters/movement): exports and imports
    "inv": "http://gov.uk/customs/inventoryLinking/v1",
    "ili": "http://gov.uk/customs/inventoryLinkingImport/v1",
}
PREFIXES = {uri: prefix for prefix, uri in NAMESPACES.items()}

# (driver schema, root element) pairs the table covers.
ROOTS = (
    (SCHEMAS / "dec_driver.xsd", "md:MetaData"),
    (SCHEMAS / "dec_driver.xsd", "dec:Declaration"),
    (SCHEMAS / "res_driver.xsd", "res:Response"),
)
# The inventory-linking schemas declare vc:minVersion="1.1": only xmlschema's XSD 1.1
# processor sees their declarations.
_EXPORTS = INVENTORY_LINKING / "exports"
_IMPORTS = INVENTORY_LINKING / "imports"
ROOTS_11 = (
    (_EXPORTS / "inventoryLinkingRequestExternal.xsd", "inv:inventoryLinkingMovementRequest"),
    (_EXPORTS / "inventoryLinkingRequestExternal.xsd", "inv:inventoryLinkingConsolidationRequest"),
    (_EXPORTS / "inventoryLinkingRequestExternal.xsd", "inv:inventoryLinkingQueryRequest"),
    (_EXPORTS / "inventoryLinkingResponseExternal.xsd", "inv:inventoryLinkingMovementResponse"),
    (_EXPORTS / "inventoryLinkingResponseExternal.xsd", "inv:inventoryLinkingControlResponse"),
    (_EXPORTS / "inventoryLinkingResponseExternal.xsd", "inv:inventoryLinkingQueryResponse"),
    (
        _EXPORTS / "inventoryLinkingResponseExternal.xsd",
        "inv:inventoryLinkingMovementTotalsResponse",
    ),
    (_IMPORTS / "inventoryLinkingImportArriveGoods.xsd", "ili:inventoryLinkingImportsGoodsArrival"),
    (
        _IMPORTS / "inventoryLinkingImportValidateMovementRequest.xsd",
        "ili:InventoryLinkingImportsValidateMovementRequest",
    ),
    (
        _IMPORTS / "inventoryLinkingImportValidateMovementResponse.xsd",
        "ili:InventoryLinkingImportsValidateMovementResponse",
    ),
)


def short(qname: str) -> str:
    """``{uri}Local`` -> ``prefix:Local``."""
    uri, local = qname[1:].split("}", 1)
    return f"{PREFIXES[uri]}:{local}"


def clark(short_name: str) -> str:
    prefix, local = short_name.split(":", 1)
    return f"{{{NAMESPACES[prefix]}}}{local}"


def _wco_id(element: Any) -> str | None:
    """The <WCOID> in an element declaration's documentation (e.g. 28A, D026)."""
    annotation = element.annotation
    for documentation in annotation.documentation if annotation else ():
        for node in documentation.iter():
            if (
                isinstance(node.tag, str)
                and node.tag.endswith("WCOID")
                and (node.text or "").strip()
            ):
                return str(node.text).strip()
    return None


def build_table() -> dict[str, dict[str, Any]]:
    """{"children": path -> child elements in order, "wco_ids": path -> WCO id}."""
    import xmlschema  # generation only

    children_of: dict[str, list[str]] = {}
    ids: dict[str, str] = {}

    def walk(element: Any, path: str, depth: int) -> None:
        wco_id = _wco_id(element)
        if wco_id:
            ids[path] = wco_id
        xsd_type = element.type
        if xsd_type.is_simple() or xsd_type.has_simple_content() or depth > 40:
            return
        children = [c for c in xsd_type.content.iter_elements() if getattr(c, "name", None)]
        children_of[path] = [short(c.name) for c in children]
        for child in children:
            walk(child, f"{path}/{short(child.name)}", depth + 1)

    for driver, root in ROOTS:
        schema = xmlschema.XMLSchema(str(driver))
        walk(schema.maps.elements[clark(root)], root, 0)
    for driver, root in ROOTS_11:
        schema11 = xmlschema.XMLSchema11(str(driver), allow="sandbox", defuse="always")
        walk(schema11.maps.elements[clark(root)], root, 0)
    return {"children": dict(sorted(children_of.items())), "wco_ids": dict(sorted(ids.items()))}


@cache
def _load() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(TABLE_FILE.read_text(encoding="utf-8"))
    return raw


@cache
def load_table() -> dict[str, tuple[str, ...]]:
    return {path: tuple(children) for path, children in _load()["children"].items()}


@cache
def load_wco_ids() -> dict[str, str]:
    return dict(_load()["wco_ids"])


def wco_pointer(path: str) -> str | None:
    """The WCO class-id chain of a table path, e.g. 42A/67A/68A/23A/137."""
    ids = load_wco_ids()
    steps = path.split("/")
    chain = [ids[p] for p in ("/".join(steps[: i + 1]) for i in range(len(steps))) if p in ids]
    return "/".join(chain) or None


def render(table: dict[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    TABLE_FILE.write_text(render(build_table()), encoding="utf-8")
    print(f"wrote {TABLE_FILE}", file=sys.stderr)
