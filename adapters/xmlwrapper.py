"""Gateway wrappers around a customs document, kept verbatim so that they survive a round trip.

CDS gateways put a document inside an envelope of their own: a ``requestCommon`` with routing
and audit headers (client, conversation and correlation ids, receipt time) and a
``requestDetail`` holding the document. The MDG ``submitDeclarationRequest`` wraps a WCO DM
MetaData; the inventory-linking ``InventoryLinkingExportsInboundRequest`` wraps a movement
request. No schema for these envelopes is published, so the hub does not type them: the
translator decodes the document inside, and the wrapper, without the document, goes into the
message's residue under the path ``^wrapper`` (its XML, the document's position in
``requestDetail`` as ``index``, and the way to ``requestDetail`` from the wrapper's root as
``value``, child positions joined by "/"). Writing puts the translated document back there.

Pure: elements and residue in, elements and residue out. A wrapper that comes back from a
partner is parsed under the same hardening and limits as any document (adapters/xmlsafe.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from adapters.xmlsafe import element_path, local_name, parse_xml
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits
from hub.pb.customs_hub.v1 import declaration_pb2

Residue = declaration_pb2.Residue

WRAPPER_PATH = "^wrapper"
DETAIL = "requestDetail"


def payload_of(root: etree._Element, accepted: Iterable[str], source: str) -> etree._Element:
    """The one document inside the wrapper ``root``: the only element in its
    ``requestDetail`` (in the wrapper's namespace), whose tag must be one of ``accepted``."""
    namespace = etree.QName(root).namespace
    detail = root.find(f"{{{namespace}}}{DETAIL}" if namespace else DETAIL)
    if detail is None:
        raise TranslationError(
            f"{source}: the {local_name(str(root.tag))} wrapper has no {DETAIL}",
            reason="unsupported-document",
            line=root.sourceline,
            path=element_path(root),
        )
    inside = [child for child in detail if isinstance(child.tag, str)]
    allowed = set(accepted)
    if len(inside) != 1 or inside[0].tag not in allowed:
        found = ", ".join(local_name(str(c.tag)) for c in inside) or "nothing"
        raise TranslationError(
            f"{source}: {DETAIL} must hold exactly one of "
            f"{', '.join(sorted(local_name(t) for t in allowed))}; found {found}",
            reason="unsupported-document",
            line=detail.sourceline,
            path=element_path(detail),
        )
    return inside[0]


def keep_wrapper(root: etree._Element, payload: etree._Element) -> Residue:
    """The wrapper ``root`` without ``payload``, as residue that ``rewrap`` puts back."""
    parent = payload.getparent()
    steps: list[str] = []
    node = parent
    while node is not None and node is not root:
        above = node.getparent()
        steps.append(str(above.index(node)))
        node = above
    index = parent.index(payload)
    parent.remove(payload)
    try:
        xml = etree.tostring(root, with_tail=False)
    finally:
        parent.insert(index, payload)
    return Residue(path=WRAPPER_PATH, xml=xml, index=index, value="/".join(reversed(steps)))


def wrapper_residue(residue: Sequence[Residue]) -> tuple[Residue | None, list[Residue]]:
    """The wrapper kept in ``residue`` (or None), and the rest."""
    kept = [r for r in residue if r.path == WRAPPER_PATH]
    if len(kept) > 1:
        raise TranslationError(
            f"the message keeps {len(kept)} wrappers; a document has at most one",
            reason="invalid-content",
        )
    return (kept[0] if kept else None), [r for r in residue if r.path != WRAPPER_PATH]


def rewrap(
    payload: etree._Element, kept: Residue, limits: XmlLimits, accepted_roots: Iterable[str]
) -> etree._Element:
    """``payload`` put back inside the wrapper kept as ``kept``; the wrapper's root must be one
    of ``accepted_roots`` (a partner's residue is as untrusted as any document)."""
    root = parse_xml(kept.xml, limits, source="preserved wrapper")
    if root.tag not in set(accepted_roots):
        raise TranslationError(
            f"the preserved wrapper is a {local_name(str(root.tag))}, not a wrapper this "
            "format writes",
            reason="invalid-content",
        )
    parent = root
    try:
        for step in kept.value.split("/") if kept.value else ():
            parent = parent[int(step)]
    except (ValueError, IndexError):
        raise TranslationError(
            "the preserved wrapper does not have the place its document was in",
            reason="invalid-content",
        ) from None
    if local_name(str(parent.tag)) != DETAIL or kept.index > len(parent):
        raise TranslationError(
            f"the preserved wrapper's document was not in its {DETAIL}", reason="invalid-content"
        )
    if any(isinstance(child.tag, str) for child in parent):
        # Reading keeps the wrapper without its one document; a wrapper that comes back with
        # an element there would put a document the hub never translated next to its own.
        raise TranslationError(
            f"the preserved wrapper's {DETAIL} already holds an element; it holds only the "
            "document the hub writes",
            reason="invalid-content",
        )
    parent.insert(kept.index, payload)
    return root
