"""The NCTS phase 6 schemas (XSD 60.4.16): built once per process, local copies only.

The schemas declare ``vc:minVersion="1.1"``, so only xmlschema's XSD 1.1 processor sees their
declarations (its 1.0 processor prunes them all and would accept anything). They are loaded from
``schemas/ncts`` and nowhere else: xmlschema runs in ``sandbox`` mode under that folder, so an
``xs:include``/``xs:import`` leading anywhere outside it (another path, ``file:``, ``http:``)
is refused before it is opened, and every schema document is parsed defused (no DTD, no
entities). Documents are validated with ``use_location_hints=False``: an instance's
``xsi:schemaLocation`` never adds a schema.

What it must never do: fetch anything over the network, or validate with a schema it did not
build from ``schemas/ncts``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xmlschema
from lxml import etree

from adapters.xmlsafe import element_path, local_name
from hub.core.errors import TranslationError

SCHEMAS = Path(__file__).resolve().parents[2] / "schemas" / "ncts"
NCTS = "http://ncts.dgtaxud.ec"
SCHEMA_VERSION = "60.4.16"

# Root element -> schema file under schemas/ncts.
SCHEMA_FILES = {"CC029C": "cc029c.xsd", "CC060C": "cc060c.xsd", "CC044C": "cc044c.xsd"}

# Counting stops here: past a hundred distinct problems the document is not worth describing,
# and iterating every error of a large broken document costs seconds.
MAX_COUNTED_ERRORS = 100
# The longest reason quoted in an error; xmlschema lists every expected tag in some reasons.
_MAX_REASON = 300


def build(path: Path, *, check_schema: bool = False) -> xmlschema.XMLSchema11:
    """Build one schema from ``path`` under the hardened settings.

    ``check_schema=False`` skips validating the schema documents against the XSD meta-schema,
    which is four fifths of the build time (about 3 s of 4 s on a shared core). The copies are
    fixed and byte-identical to HMRC's; the test suite builds them once with the check on and
    compares the result.
    """
    return xmlschema.XMLSchema11(
        str(path),
        base_url=str(path.parent),
        allow="sandbox",  # includes and imports resolve under path.parent or are refused
        defuse="always",  # schema documents are parsed with DTDs and entities forbidden
        timeout=5,  # never reached: no URL passes the sandbox; bounds it if that ever changes
        validation="strict" if check_schema else "skip",
    )


_lock = threading.Lock()  # one lock: concurrent builds would share xmlschema's meta-schema
_built: dict[str, xmlschema.XMLSchema11] = {}


def schema_for(root_name: str) -> xmlschema.XMLSchema11:
    """The schema of one NCTS message, built on first use and kept for the process."""
    built = _built.get(root_name)
    if built is not None:
        return built
    with _lock:
        built = _built.get(root_name)
        if built is None:
            try:
                built = build(SCHEMAS / SCHEMA_FILES[root_name])
            except Exception as exc:  # noqa: BLE001 - a missing or broken copy, however it fails
                raise TranslationError(
                    f"the NCTS schema {SCHEMA_FILES[root_name]} cannot be loaded from "
                    f"schemas/ncts: {type(exc).__name__}",
                    reason="schema-unavailable",
                ) from None
            _built[root_name] = built
        return built


@dataclass(frozen=True)
class Problem:
    """One schema violation, located in the document."""

    line: int | None
    path: str
    reason: str


def validate(root: etree._Element, source: str) -> None:
    """Raise ``schema-invalid`` naming the first violation and how many there are."""
    name = local_name(str(root.tag))
    schema = schema_for(name)
    try:
        problems = _distinct(schema.iter_errors(root, use_location_hints=False))
        first = next(problems, None)
        if first is None:
            return
        count = 1 + sum(1 for _ in zip(range(MAX_COUNTED_ERRORS - 1), problems, strict=False))
    except Exception as exc:  # noqa: BLE001 - xmlschema may fail in ways of its own on odd input
        raise TranslationError(
            f"{source} could not be checked against the NCTS schema {SCHEMA_FILES[name]}: "
            f"{type(exc).__name__}",
            reason="schema-invalid",
            path=element_path(root),
        ) from None
    total = f"{count}+" if count >= MAX_COUNTED_ERRORS else str(count)
    raise TranslationError(
        f"{source} is not valid against the NCTS phase 6 schema {SCHEMA_FILES[name]} "
        f"(XSD {SCHEMA_VERSION}): {first.reason} ({total} problem"
        f"{'' if count == 1 else 's'} found; the first is reported)",
        reason="schema-invalid",
        line=first.line,
        path=first.path,
    )


def _distinct(errors: Iterator[Any]) -> Iterator[Problem]:
    """Each violation once: xmlschema reports a failed pattern both for the facet and for
    the element."""
    seen: set[Problem] = set()
    for error in errors:
        problem = _problem(error)
        if problem not in seen:
            seen.add(problem)
            yield problem


def _problem(error: Any) -> Problem:
    element = error.elem if isinstance(error.elem, etree._Element) else None
    # A content-model error is reported on the parent; the child at ``index`` is the culprit.
    index = getattr(error, "index", None)
    if element is not None and isinstance(index, int) and 0 <= index < len(element):
        element = element[index]
    reason = str(error.reason or "not valid")
    value = error.obj if isinstance(error.obj, str) else None
    if value:
        # Say what kind of value was found, never the value itself (payload content).
        reason = reason.replace(repr(value), "the value")
        reason += f" (found a value of {len(value)} characters)"
    if len(reason) > _MAX_REASON:
        reason = reason[:_MAX_REASON] + "..."
    if element is None:
        return Problem(None, str(error.path or ""), reason)
    return Problem(element.sourceline, element_path(element), reason)
