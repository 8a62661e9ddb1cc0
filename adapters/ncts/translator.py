"""The ``ncts-p6`` format: EU NCTS phase 6 control messages -> ``ControlResult``.

Reading, in order:

1. hardened parse (adapters/xmlsafe.py: no DOCTYPE, no XInclude, no schema-location URL,
   size, depth and element limits);
2. the root must be CC029C, CC060C or CC044C in the NCTS namespace, and its messageType must
   name the same message;
3. validation against that message's XSD 60.4.16 schema with xmlschema's XSD 1.1 processor,
   built from schemas/ncts only (adapters/ncts/schemas.py);
4. mapping (adapters/ncts/mapping.py).

Decode only: the hub never writes NCTS messages. Every failure is a TranslationError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf.message import Message
from lxml import etree

from adapters.ncts.mapping import control_result
from adapters.ncts.schemas import NCTS, SCHEMA_FILES, validate
from adapters.xmlsafe import element_path, local_name, parse_xml
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits

MESSAGES = tuple(SCHEMA_FILES)
SNIFF_BYTES = 4096  # what adapters.formats.detect hands to sniff

# The root element's name after an optional BOM, XML declaration, comments, processing
# instructions and whitespace. Each construct starts with "<", so whitespace between them
# cannot be split two ways and a failed match does not backtrack; repetitions are bounded.
_ROOT = re.compile(
    rb"\A(?:\xef\xbb\xbf)?"
    rb"\s*(?:(?:<\?[^>]{0,1024}\?>|<!--(?:[^-]|-(?!->)){0,2048}-->)\s*){0,32}"
    rb"<(?:[A-Za-z_][\w.\-]{0,63}:)?(CC029C|CC060C|CC044C)[\s/>]"
)


@dataclass(frozen=True)
class NctsP6:
    """The ``ncts-p6`` format."""

    limits: XmlLimits = field(default_factory=XmlLimits)
    format_id: str = "ncts-p6"
    media_type: str = "application/xml"
    directions: frozenset[str] = frozenset({"decode"})
    description: str = (
        "EU NCTS phase 6 control messages (CC029C, CC060C, CC044C; XSD 60.4.16) to ControlResult"
    )

    def decode(self, data: bytes, source: str = "document") -> Message:
        root = parse_xml(data, self.limits, source=source)  # step 1
        _check_root(root, source)  # step 2
        validate(root, source)  # step 3
        try:
            return control_result(root)  # step 4
        except (ValueError, TypeError) as exc:
            # protobuf refuses text it cannot hold (e.g. invalid UTF-8 surrogates)
            raise TranslationError(
                f"{source} cannot be held in a ControlResult: {type(exc).__name__}",
                reason="invalid-content",
            ) from None

    def encode(self, message: Message) -> bytes:
        raise TranslationError(
            "format 'ncts-p6' can only decode; the hub never writes NCTS messages",
            reason="unsupported-direction",
        )

    def sniff(self, head: bytes) -> bool:
        """Whether ``head`` starts an NCTS control message (by its root element's name)."""
        return _ROOT.match(head[:SNIFF_BYTES]) is not None


def _check_root(root: etree._Element, source: str) -> None:
    name = local_name(str(root.tag))
    if name not in MESSAGES:
        raise TranslationError(
            f"{source}: expected an NCTS {', '.join(MESSAGES)} message; found root element "
            f"{name!r}",
            reason="unsupported-document",
            line=root.sourceline,
            path=element_path(root),
        )
    namespace = etree.QName(root).namespace
    if namespace != NCTS:
        raise TranslationError(
            f"{source}: the {name} root element must be in the namespace {NCTS}; "
            f"found {'no namespace' if namespace is None else 'another namespace'}",
            reason="schema-invalid",
            line=root.sourceline,
            path=element_path(root),
        )
    declared = root.find("messageType")
    if declared is not None and (declared.text or "").strip() != name:
        # The schema allows any message type here; a CC044C that says it is a CC029C is
        # ambiguous, and refused rather than guessed.
        raise TranslationError(
            f"{source}: the root element is {name} but messageType names another message",
            reason="schema-invalid",
            line=declared.sourceline,
            path=element_path(declared),
        )
