"""The UN/EDIFACT D.96B directory: message structures, segment layouts and code lists.

Loaded once per process from ``schemas/edifact/D96B`` (copies of php-edifact/edifact-mapping,
see schemas/edifact/NOTICE) with the hub's hardened XML parser, and used to check a message:
its segment sequence against the message structure (segment groups, mandatory segments,
maximum repetitions), each segment's data elements and components against the segment
definition (count, mandatory, length, numeric), and the codes of the qualifiers the hub maps.
The check returns the message as a tree of segment groups, which the mappings read.

Codes and their agency: in a composite with a code list responsible agency (3055), that agency
governs the code before it (with its 1131 qualifier between: GIS C529 7365:1131:3055). The
D.96B list applies only where 3055 is absent or 6 (UN/ECE); a code of another agency is checked
against the code list registered for (agency, element, qualifier) if there is one
(hub/core/codelists.py), and is otherwise accepted as given (docs/formats/code-lists.md).

What it must never do: read anything outside schemas/edifact, or use the network.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from adapters.edifact.syntax import Segment, quoted
from adapters.xmlsafe import parse_xml
from hub.core.codelists import NO_CODE_LISTS, UN_AGENCY, CodeList, CodeLists
from hub.core.errors import TranslationError
from hub.core.limits import XmlLimits

DIRECTORY = Path(__file__).resolve().parents[2] / "schemas" / "edifact" / "D96B"
MESSAGES = ("CUSRES", "CUSDEC")
STRUCTURE = "edifact-structure"
CODE = "edifact-code"

# Code lists checked: the qualifiers and codes the mappings read or write. Other coded elements
# are checked for length only, as partners use their own lists for them (e.g. 7361, 1131).
CHECKED_CODES = frozenset(
    {"1001", "1225", "7365", "1153", "2005", "2379", "3035", "3227", "4451", "8053", "5025",
     "6311", "6313", "3139"}
)  # fmt: skip
# A 'n' value: digits with at most one decimal mark and a leading minus sign, neither counted
# in its length (ISO 9735 section 10).
_NUMERIC = re.compile(r"-?(\d+([.,]\d*)?|[.,]\d+)")


@dataclass(frozen=True)
class Component:
    id: str
    type: str  # "an", "n" or "a"
    max_length: int
    required: bool


@dataclass(frozen=True)
class ElementDef:
    id: str
    required: bool
    composite: bool
    components: tuple[Component, ...]


@dataclass(frozen=True)
class Node:
    """A segment or a segment group of a message structure."""

    id: str  # segment tag, or group id (SG3)
    group: bool
    max_repeat: int
    required: bool
    children: tuple[Node, ...] = ()

    @property
    def trigger(self) -> str:
        return self.children[0].id if self.group else self.id


@dataclass
class Group:
    """One occurrence of a segment group in a message (the message itself has id "")."""

    id: str
    segments: list[Segment] = field(default_factory=list)
    groups: list[Group] = field(default_factory=list)

    def all(self, tag: str) -> list[Segment]:
        return [s for s in self.segments if s.tag == tag]

    def first(self, tag: str) -> Segment | None:
        return next((s for s in self.segments if s.tag == tag), None)

    def of(self, group_id: str) -> list[Group]:
        return [g for g in self.groups if g.id == group_id]


@dataclass(frozen=True)
class Directory:
    messages: dict[str, Node]
    segments: dict[str, tuple[ElementDef, ...]]
    codes: dict[str, frozenset[str]]


def _an(id_: str, length: int, required: bool = False, kind: str = "an") -> Component:
    return Component(id_, kind, length, required)


def _simple(id_: str, length: int, required: bool = False, kind: str = "an") -> ElementDef:
    return ElementDef(id_, required, False, (_an(id_, length, required, kind),))


# Service segments inside a message (ISO 9735 version 4, part 1); the directory files hold
# only the user segments.
SERVICE_SEGMENTS: dict[str, tuple[ElementDef, ...]] = {
    "UNH": (
        _simple("0062", 14, required=True),
        ElementDef(
            "S009",
            True,
            True,
            (
                _an("0065", 6, True),
                _an("0052", 3, True),
                _an("0054", 3, True),
                _an("0051", 2, True),
                _an("0057", 6),
            ),
        ),
        _simple("0068", 35),
        ElementDef("S010", False, True, (_an("0070", 2, True, "n"), _an("0073", 1, kind="a"))),
    ),
    "UNT": (_simple("0074", 6, required=True, kind="n"), _simple("0062", 14, required=True)),
    "UNS": (_simple("0081", 1, required=True, kind="a"),),
}


@cache
def d96b() -> Directory:
    """The directory, loaded on first use and kept for the process."""
    limits = XmlLimits()
    messages = {}
    for name in MESSAGES:
        root = _load(DIRECTORY / "messages" / f"{name.lower()}.xml", limits)
        messages[name] = Node(name, True, 1, True, tuple(_node(child) for child in root))
    segments: dict[str, tuple[ElementDef, ...]] = dict(SERVICE_SEGMENTS)
    for seg in _load(DIRECTORY / "segments.xml", limits):
        segments[seg.get("id")] = tuple(_element(child) for child in seg)
    codes = {}
    for element in _load(DIRECTORY / "codes.xml", limits):
        if element.get("id") in CHECKED_CODES:
            codes[element.get("id")] = frozenset(code.get("id") for code in element)
    return Directory(messages, segments, codes)


def _load(path: Path, limits: XmlLimits) -> list[Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TranslationError(
            f"EDIFACT directory file {path.name} cannot be read ({exc.strerror})",
            reason="schema-unavailable",
        ) from None
    root = parse_xml(data, limits, source=path.name)
    return [child for child in root if isinstance(child.tag, str) and child.tag != "defaults"]


def _node(element: Any) -> Node:
    get = element.get
    group = element.tag == "group"
    children = tuple(_node(child) for child in element) if group else ()
    return Node(get("id"), group, int(get("maxrepeat", "1")), get("required") == "true", children)


def _component(element: Any) -> Component:
    get = element.get
    return Component(
        get("id"), get("type", "an"), int(get("maxlength", "0") or 0), get("required") == "true"
    )


def _element(element: Any) -> ElementDef:
    get = element.get
    if element.tag == "composite_data_element":
        parts = tuple(_component(child) for child in element)
        return ElementDef(get("id"), get("required") == "true", True, parts)
    return ElementDef(get("id"), get("required") == "true", False, (_component(element),))


# --------------------------------------------------------------------------------------------
# Checking a message
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checked:
    root: Group
    paths: dict[int, str]  # segment number -> its place in the structure, e.g. "SG4/ERC"


def check_message(
    name: str,
    message: Sequence[Segment],
    directory: Directory,
    code_lists: CodeLists = NO_CODE_LISTS,
) -> Checked:
    """The message as a group tree, or TranslationError: ``edifact-structure`` for order,
    groups, repetitions and element layout, ``edifact-code`` for a code not in its list (the
    D.96B one, or for another agency's code the one registered in ``code_lists``)."""
    matcher = _Matcher(name, list(message), directory.messages[name])
    root = matcher.run()
    for seg in message:
        check_segment(seg, directory, matcher.paths.get(seg.number, seg.tag), code_lists)
    return Checked(root, matcher.paths)


class _Matcher:
    """Greedy left-to-right matching of segments against the structure, as ISO 9735 intends
    (a message structure is unambiguous without look-ahead)."""

    def __init__(self, name: str, segments: list[Segment], structure: Node) -> None:
        self.name, self.segments, self.structure = name, segments, structure
        self.pos = 0
        self.paths: dict[int, str] = {}
        self.exhausted: dict[int, tuple[str, int]] = {}  # position -> (path, max repeat)
        self.known = _tags(structure)

    def run(self) -> Group:
        root = Group("")
        self._sequence(self.structure.children, root, "")
        if self.pos < len(self.segments):
            raise self._unexpected()
        return root

    def _starts(self, node: Node) -> bool:
        return self.pos < len(self.segments) and self.segments[self.pos].tag == node.trigger

    def _sequence(self, children: tuple[Node, ...], holder: Group, prefix: str) -> None:
        for child in children:
            count = 0
            while self._starts(child):
                if count == child.max_repeat:
                    self.exhausted.setdefault(self.pos, (prefix + child.id, child.max_repeat))
                    break
                if child.group:
                    occurrence = Group(child.id)
                    holder.groups.append(occurrence)
                    self._sequence(child.children, occurrence, f"{prefix}{child.id}/")
                else:
                    seg = self.segments[self.pos]
                    self.paths[seg.number] = prefix + child.id
                    holder.segments.append(seg)
                    self.pos += 1
                count += 1
            if child.required and count == 0:
                raise self._missing(prefix + child.id, child.id)

    def _missing(self, path: str, tag: str) -> TranslationError:
        if self.pos >= len(self.segments):
            last = self.segments[-1]
            return TranslationError(
                f"{self.name}: mandatory segment {path} is missing after {last.where()}",
                reason=STRUCTURE,
                line=last.number,
                path=path,
            )
        found = self.segments[self.pos]
        if tag == "UNT" or self.pos in self.exhausted or found.tag not in self.known:
            return self._unexpected()
        return TranslationError(
            f"{found.where()}: {self.name} expects mandatory segment {path} here; found "
            f"{found.tag}",
            reason=STRUCTURE,
            line=found.number,
            path=path,
        )

    def _unexpected(self) -> TranslationError:
        found = self.segments[self.pos]
        if self.pos in self.exhausted:
            path, most = self.exhausted[self.pos]
            return TranslationError(
                f"{found.where()}: {path} repeats more than the {most} time(s) {self.name} "
                "D.96B allows",
                reason=STRUCTURE,
                line=found.number,
                path=path,
            )
        if found.tag not in self.known:
            return TranslationError(
                f"{found.where()}: {found.tag} is not a segment of {self.name} D.96B",
                reason=STRUCTURE,
                line=found.number,
                path=found.tag,
            )
        previous = self.segments[self.pos - 1] if self.pos else None
        after = f" after {previous.where()}" if previous else ""
        return TranslationError(
            f"{found.where()}: {found.tag} is out of place in {self.name} D.96B (not "
            f"allowed{after})",
            reason=STRUCTURE,
            line=found.number,
            path=found.tag,
        )


def _tags(node: Node) -> frozenset[str]:
    if not node.group:
        return frozenset({node.id})
    return frozenset().union(*(_tags(child) for child in node.children))


def check_segment(
    seg: Segment, directory: Directory, path: str, code_lists: CodeLists = NO_CODE_LISTS
) -> None:
    """One segment's data elements and components against its D.96B definition."""
    definition = directory.segments.get(seg.tag)
    if definition is None:
        raise TranslationError(
            f"{seg.where()}: {seg.tag} is not a D.96B segment",
            reason=STRUCTURE,
            line=seg.number,
            path=path,
        )
    if len(seg.elements) > len(definition):
        raise _element_error(
            seg, path, f"has {len(seg.elements)} data elements; {seg.tag} has at most "
            f"{len(definition)}"
        )  # fmt: skip
    for position, spec in enumerate(definition):
        value = seg.elements[position] if position < len(seg.elements) else ()
        present = any(value)
        if not present:
            if spec.required:
                raise _element_error(seg, path, f"mandatory data element {spec.id} is missing")
            continue
        if not spec.composite and len(value) > 1:
            raise _element_error(
                seg, path, f"data element {spec.id} is simple; found {len(value)} components"
            )
        if len(value) > len(spec.components):
            raise _element_error(
                seg, path, f"composite {spec.id} has at most {len(spec.components)} "
                f"components; found {len(value)}"
            )  # fmt: skip
        governed = _governed(spec, value) if spec.composite else {}
        for index, component in enumerate(spec.components):
            text = value[index] if index < len(value) else ""
            agency, qualifier = governed.get(index, ("", ""))
            if agency in ("", UN_AGENCY):
                _check_component(seg, path, spec, component, text, directory)
                continue
            _check_component(seg, path, spec, component, text, _NO_CODES)
            found = code_lists.find(agency, component.id, qualifier)
            if found is not None and text:
                _check_listed(seg, path, spec, component, text, found)


_NO_CODES = Directory({}, {}, {})


def _governed(spec: ElementDef, value: Sequence[str]) -> dict[int, tuple[str, str]]:
    """The components of a composite whose code an agency (3055) qualifies: component index
    -> (agency, 1131 qualifier). The code is the component before the agency, or before the
    1131 that precedes it (C529 7365:1131:3055, C213 7224:7065:1131:3055)."""
    governed: dict[int, tuple[str, str]] = {}
    ids = [c.id for c in spec.components]
    for index, component_id in enumerate(ids):
        if component_id != "3055" or index == 0:
            continue
        agency = value[index] if index < len(value) else ""
        qualifier = ""
        code = index - 1
        if ids[code] == "1131" and code > 0:
            qualifier = value[code] if code < len(value) else ""
            code -= 1
        governed[code] = (agency, qualifier)
    return governed


def _check_listed(
    seg: Segment, path: str, spec: ElementDef, component: Component, text: str, found: CodeList
) -> None:
    if found.closed and text not in found:
        name = f"{spec.id}/{component.id}"
        raise TranslationError(
            f"{seg.where()}: {name} code {quoted(text)} is not in code list {found.where()}",
            reason=CODE,
            line=seg.number,
            path=path,
        )


def _check_component(
    seg: Segment, path: str, spec: ElementDef, component: Component, text: str, d: Directory
) -> None:
    name = f"{spec.id}/{component.id}" if spec.composite else component.id
    if not text:
        if component.required:
            raise _element_error(seg, path, f"mandatory component {name} is missing")
        return
    length = len(text)
    if component.type == "n":
        if not _NUMERIC.fullmatch(text):
            raise _element_error(seg, path, f"{name} is numeric; found a non-numeric value")
        length = sum(c.isdigit() for c in text)
    if component.max_length and length > component.max_length:
        raise _element_error(
            seg, path, f"{name} is at most {component.max_length} characters; found {length}"
        )
    codes = d.codes.get(component.id)
    if codes is not None and text not in codes:
        raise TranslationError(
            f"{seg.where()}: {name} code {quoted(text)} is not in the D.96B code list "
            f"{component.id}",
            reason=CODE,
            line=seg.number,
            path=path,
        )


def _element_error(seg: Segment, path: str, what: str) -> TranslationError:
    return TranslationError(f"{seg.where()} {what}", reason=STRUCTURE, line=seg.number, path=path)
