"""The one way translators read XML: hardened parsing with limits.

Policy (docs/adr/0004-xml-hardening.md):

* any DOCTYPE is refused (``forbidden-doctype``): no internal subset, so no entity expansion
  (billion laughs, quadratic blow-up) and no external DTD or entity (XXE);
* entities are never resolved, the network is never used, XInclude is never processed and an
  XInclude element is refused (``forbidden-xinclude``);
* ``xsi:schemaLocation`` and ``xsi:noNamespaceSchemaLocation`` are never followed; a hint with a
  URL scheme (http, file, ...) is refused (``forbidden-schema-location``), a relative hint is
  kept as data only;
* size, nesting depth and element count are bounded by ``XmlLimits`` (``limit-exceeded``);
* anything else that is not well-formed XML is ``not-well-formed``, with line and column.

This module parses bytes it is given; it never opens files or sockets.
"""

from __future__ import annotations

import re
import threading
from functools import cache

from lxml import etree

from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XINCLUDE_NAMESPACES = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")
_MAX_PATH = 200  # characters of an element path quoted in an error
_SCHEMA_LOCATION_ATTRS = (f"{{{XSI}}}schemaLocation", f"{{{XSI}}}noNamespaceSchemaLocation")
# A hint that leads anywhere but next to the document: a URL scheme, a network path
# (//host/..., \\host\...) or an absolute path.
_URL_SCHEME = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.-]*://|^(file|http|https|ftp|jar|data):|^[/\\]", re.IGNORECASE
)


# The separator of an XML Schema list (xs:anyURI pairs in xsi:schemaLocation): space, tab, CR,
# LF and nothing else. str.split() also splits at NEL, NBSP and other Unicode spaces, which
# would move a URL from a location's place into a namespace name's, unchecked.
_XML_SPACE = re.compile(r"[ \t\r\n]+")


_local = threading.local()


def _parser() -> etree.XMLParser:
    """This thread's hardened parser. lxml parsers may not be shared between threads, and a
    fresh one costs about a third of parsing a median declaration, so each thread keeps one."""
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        remove_blank_text=True,  # indentation between elements carries nothing in WCO DM
        collect_ids=False,
    )


def parse_xml(data: bytes, limits: XmlLimits, *, source: str = "document") -> etree._Element:
    """Parse untrusted XML bytes under the policy above and return the root element."""
    if len(data) > limits.max_bytes:
        raise TranslationError(
            f"{source} is {len(data)} bytes; the limit is {limits.max_bytes}",
            reason="limit-exceeded",
        )
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (None, None)
        message = _POSITION_SUFFIX.sub("", str(exc.msg or "not well-formed"))
        # libxml2 may stop inside a DTD (entity amplification, unresolved external entity)
        # before the DOCTYPE check below could run; report the policy, not the symptom.
        if _mentions_doctype(data):
            raise TranslationError(
                f"{source} has a DOCTYPE; documents with DTDs or entity declarations are refused",
                reason="forbidden-doctype",
                line=line,
                column=column,
            ) from None
        raise TranslationError(
            f"{source} is not well-formed XML: {message}",
            reason="limit-exceeded" if "Excessive depth" in message else "not-well-formed",
            line=line,
            column=column,
        ) from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise TranslationError(
            f"{source} has a DOCTYPE; documents with DTDs or entity declarations are refused",
            reason="forbidden-doctype",
            line=1,
        )
    _check_tree(root, limits, source, _literal_markers(data, docinfo.encoding))
    return root


_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(codec) for codec in ("utf-8", "utf-16-le", "utf-16-be"))


def _mentions_doctype(data: bytes) -> bool:
    return any(marker in data for marker in _DOCTYPE_MARKERS)


_COUNT_ELEMENTS = etree.XPath("count(//*)")
_XINCLUDE_ELEMENTS = etree.XPath(
    "//xi1:* | //xi2:*",
    namespaces={"xi1": XINCLUDE_NAMESPACES[0], "xi2": XINCLUDE_NAMESPACES[1]},
)
_SCHEMA_LOCATION_HINTS = etree.XPath(
    "//@xsi:schemaLocation | //@xsi:noNamespaceSchemaLocation", namespaces={"xsi": XSI}
)


@cache
def _deeper_than(depth: int) -> etree.XPath:
    """Finds elements nested more than ``depth`` deep (the root is depth 1)."""
    return etree.XPath("/" + "/".join(["*"] * (depth + 1)))


# Encodings in which the bytes of an ASCII word are the word itself, so a byte search is exact.
_ASCII_COMPATIBLE = frozenset({"UTF-8", "US-ASCII", "ASCII", "ISO-8859-1", "LATIN1"})


def _literal_markers(data: bytes, encoding: str | None) -> tuple[bool, bool]:
    """Whether XInclude and schema-location checks are needed at all: (xinclude, location).

    Both constructs need their name spelled in the document: the XInclude namespace URI and
    the ``schemaLocation`` attribute name. In an ASCII-compatible encoding without character
    references a byte search settles it, which saves two tree walks on almost every document.
    """
    # lxml reports UTF-8 for a BOM-marked UTF-16 document without a declaration, so the bytes
    # themselves must look like ASCII-compatible XML too.
    wide = b"\x00" in data[:4] or data.startswith((b"\xff\xfe", b"\xfe\xff"))
    if wide or (encoding or "UTF-8").upper() not in _ASCII_COMPATIBLE or b"&#" in data:
        return True, True
    return b"XInclude" in data, b"SchemaLocation" in data or b"schemaLocation" in data


def _check_tree(
    root: etree._Element, limits: XmlLimits, source: str, markers: tuple[bool, bool] = (True, True)
) -> None:
    """Limits and forbidden constructs, each checked by one compiled XPath in C: this runs on
    every document, and a Python walk over the elements cost a quarter of a translation."""
    too_deep = _deeper_than(limits.max_depth)(root)
    if too_deep:
        element = too_deep[0]
        raise TranslationError(
            f"{source} nests deeper than {limits.max_depth} elements",
            reason="limit-exceeded",
            line=element.sourceline,
            path=element_path(element),
        )
    count = int(_COUNT_ELEMENTS(root))
    if count > limits.max_elements:
        raise TranslationError(
            f"{source} has {count} elements; the limit is {limits.max_elements}",
            reason="limit-exceeded",
        )
    xinclude = _XINCLUDE_ELEMENTS(root) if markers[0] else []
    if xinclude:
        raise TranslationError(
            f"{source} uses XInclude, which is never processed",
            reason="forbidden-xinclude",
            line=xinclude[0].sourceline,
            path=element_path(xinclude[0]),
        )
    for hint in _SCHEMA_LOCATION_HINTS(root) if markers[1] else ():
        pairs = hint.attrname == _SCHEMA_LOCATION_ATTRS[0]
        if any(_URL_SCHEME.match(part) for part in _locations(str(hint), pairs=pairs)):
            owner = hint.getparent()
            raise TranslationError(
                f"{source} points xsi:schemaLocation at a URL; schemas are only ever loaded "
                "from the hub's own schemas folder",
                reason="forbidden-schema-location",
                line=owner.sourceline,
                path=element_path(owner),
            )


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def element_path(element: etree._Element) -> str:
    names = []
    node: etree._Element | None = element
    while node is not None:
        names.append(local_name(node.tag) if isinstance(node.tag, str) else "?")
        node = node.getparent()
    path = "/" + "/".join(reversed(names))
    return path if len(path) <= _MAX_PATH else "..." + path[-_MAX_PATH:]


def _locations(value: str, *, pairs: bool) -> list[str]:
    """The locations a hint names. ``xsi:schemaLocation`` is pairs of namespace name and
    location, and a namespace name may well be an http URI (HMRC's inventory-linking gateway
    namespace is), which names no file: only the locations are checked. A hint that is not
    pairs (an odd number of parts), and ``noNamespaceSchemaLocation``, are checked whole."""
    parts = _XML_SPACE.split(value.strip(" \t\r\n"))  # not str.split(): see _XML_SPACE
    return parts[1::2] if pairs and len(parts) % 2 == 0 else parts


def check_schema_location(value: str, source: str, *, pairs: bool = False) -> None:
    """Refuse a schema-location hint that points anywhere but next to the document; ``pairs``
    for an ``xsi:schemaLocation`` value (namespace and location pairs)."""
    if any(_URL_SCHEME.match(part) for part in _locations(value, pairs=pairs)):
        raise TranslationError(
            f"{source} points xsi:schemaLocation at a URL or absolute path; schemas are only "
            "ever loaded from the hub's own schemas folder",
            reason="forbidden-schema-location",
        )


# What the hub may translate on its event loop (a translator's ``light``): at most 32 KiB and
# 400 tags. The median CDS declaration (17 KB, 309 tags) takes 0.3 ms through wco-xml; the
# costliest shape known, a wrapper of empty responses, about 4 ms at 400.
LIGHT_BYTES = 32 * 1024
LIGHT_TAGS = 400


def light_xml(data: bytes) -> bool:
    """Whether an XML document is small enough to translate on the event loop: a cheap test of
    size and tag count, not a parse."""
    return len(data) <= LIGHT_BYTES and data.count(b"<") <= LIGHT_TAGS
