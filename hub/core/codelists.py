"""Code lists other than UN/EDIFACT's own: a partner administration's (a national status code,
its responsible agency 3055 = 143 for New Zealand Customs) or the hub's mutually defined ones
(3055 = ZZZ), what they hold and how one is read from a TOML table.

A code list is named, and governs the codes of one data element (``element``, e.g. 7365) that
a message qualifies with its responsible agency (``agency``, 3055) and, optionally, its code
list qualifier (``qualifier``, 1131). ``CodeLists`` finds the list for a coded value as the
message qualifies it. A list may map codes of 7365 (processing indicator) to a ``ControlStage``
name, so that a partner's national status reads as a control stage.

The same table shape is read from a hub.toml ``[code_lists.<name>]`` table (hub/config.py),
from a list file it names, from the lists the hub ships (adapters/edifact/codelists/) and from
plugins (adapters/edifact/codelists.py): ``parse`` is the one reader, and every problem it
finds is a line naming the key.

What it must never do: read a file, or accept a list for agency 6 (UN/ECE), whose codes only
the D.96B directory governs.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.core.errors import ConfigError
from hub.pb.customs_hub.v1 import control_pb2

UN_AGENCY = "6"  # 3055: UN/ECE, the agency of the D.96B code lists
MUTUALLY_DEFINED = "ZZZ"
# A list file is a few hundred codes at most (a national status list has tens); 1 MiB bounds
# what the hub reads from an operator's path before parsing it.
MAX_LIST_BYTES = 1024 * 1024
# The most codes one list holds: the largest D.96B list (3055, agencies) has under 200.
MAX_CODES = 10_000

LIST_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
AGENCY = re.compile(r"[A-Z0-9]{1,3}")  # 3055 is an..3
ELEMENT = re.compile(r"\d{4}")  # a data element tag
QUALIFIER = re.compile(r"[A-Za-z0-9]{1,3}")  # 1131 is an..3
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/_-]{0,34}")  # printable, at most an..35
PARTY = re.compile(r"[A-Z]{2}")

KEYS = ("agency", "element", "qualifier", "partner", "description", "closed", "codes", "stages")
# ControlStage names as a list writes them: RELEASED for CONTROL_STAGE_RELEASED
STAGES = {
    name.removeprefix("CONTROL_STAGE_"): number
    for name, number in control_pb2.ControlStage.items()
    if number != control_pb2.CONTROL_STAGE_UNSPECIFIED
}


@dataclass(frozen=True)
class CodeList:
    """One list: its codes (with what each means), and for some codes the control stage they
    report. ``closed``: a code not in ``codes`` is refused; an open list documents the codes
    known and accepts others as given."""

    name: str
    agency: str
    element: str
    codes: tuple[tuple[str, str], ...]  # (code, description), in the order written
    qualifier: str = ""  # "": the list governs the element whatever its 1131
    partner: str = ""  # the administration whose list it is, if one
    description: str = ""
    closed: bool = True
    stages: tuple[tuple[str, int], ...] = ()  # code -> ControlStage value
    source: str = ""  # where it was read from, for messages

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.agency, self.element, self.qualifier)

    def __contains__(self, code: object) -> bool:
        return any(code == c for c, _ in self.codes)

    def stage(self, code: str) -> int | None:
        return next((s for c, s in self.stages if c == code), None)

    def where(self) -> str:
        """How a message names the list: ``nz-gis (agency 143, element 7365)``."""
        qualifier = f", list {self.qualifier}" if self.qualifier else ""
        return f"{self.name} (agency {self.agency}, element {self.element}{qualifier})"


@dataclass(frozen=True)
class CodeLists:
    """Lists by (agency, element, qualifier); no two share one. Hashable, so a registry of
    translators can be kept per set of lists."""

    lists: tuple[CodeList, ...] = ()
    _index: Mapping[tuple[str, str, str], CodeList] = field(
        init=False, repr=False, compare=False, hash=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        index: dict[tuple[str, str, str], CodeList] = {}
        for code_list in self.lists:
            index.setdefault(code_list.key, code_list)
        object.__setattr__(self, "_index", index)

    def find(self, agency: str, element: str, qualifier: str = "") -> CodeList | None:
        """The list for a code of ``element`` qualified by ``agency`` (3055) and ``qualifier``
        (1131): the one registered with that qualifier, else the one registered without."""
        return self._index.get((agency, element, qualifier)) or self._index.get(
            (agency, element, "")
        )

    def named(self, name: str) -> CodeList | None:
        return next((c for c in self.lists if c.name == name), None)

    def __len__(self) -> int:
        return len(self.lists)

    def __iter__(self) -> Any:
        return iter(self.lists)


NO_CODE_LISTS = CodeLists()


def combined(groups: Iterable[tuple[str, Iterable[CodeList]]]) -> CodeLists:
    """Lists of several sources (e.g. shipped, plugins, hub.toml) as one set, the earlier
    sources first. A list whose name or (agency, element, qualifier) an earlier one has is
    refused with a ConfigError naming both: nothing replaces a list silently."""
    taken: dict[tuple[str, str, str], tuple[str, CodeList]] = {}
    names: dict[str, str] = {}
    problems: list[str] = []
    result: list[CodeList] = []
    for source, code_lists in groups:
        for code_list in code_lists:
            if code_list.name in names:
                problems.append(
                    f"{source}: code list {code_list.name} has the name of one in "
                    f"{names[code_list.name]}"
                )
                continue
            if code_list.key in taken:
                other_source, other = taken[code_list.key]
                problems.append(
                    f"{source}: code list {code_list.where()} governs the codes that "
                    f"{other.name} in {other_source} does; a list cannot replace another"
                )
                continue
            names[code_list.name] = source
            taken[code_list.key] = (source, code_list)
            result.append(code_list)
    if problems:
        raise ConfigError("\n".join(problems), reason="config-invalid")
    return CodeLists(tuple(result))


def _suggest(word: str, known: Iterable[str]) -> str:
    options = sorted(known)
    close = difflib.get_close_matches(word, options, n=1)
    return f"did you mean {close[0]}?" if close else "known: " + ", ".join(options)


def parse(
    name: str, table: Mapping[str, Any], problems: list[str], *, source: str = ""
) -> CodeList | None:
    """The list a table describes, or None with a line per problem appended to ``problems``
    (each naming the key, e.g. ``stages.819``). Keys: agency, element (required), qualifier,
    partner, description, closed, codes (a table code -> description), stages (a table
    code -> ControlStage name)."""
    before = len(problems)

    def fail(key: str, expected: str, found: object) -> None:
        problems.append(f"{key} must be {expected}; found {found!r}")

    def text(key: str, pattern: re.Pattern[str] | None, expected: str, default: str = "") -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or (pattern is not None and not pattern.fullmatch(value)):
            fail(key, expected, value)
            return default
        return value

    if not LIST_NAME.fullmatch(name):
        problems.append(
            f"{name!r} is not a code list name (lower-case letters, digits and '-', at most 64)"
        )
    for key in table:
        if key not in KEYS:
            problems.append(f"{key}: unknown key; {_suggest(key, KEYS)}")
    for key in ("agency", "element", "codes"):
        if key not in table:
            problems.append(f"{key} is missing")
    agency = text("agency", AGENCY, "a 3055 agency code of 1 to 3 letters or digits")
    if agency == UN_AGENCY:
        problems.append(
            "agency: 6 (UN/ECE) is the D.96B directory's own agency; its codes are checked "
            "against the directory, not against a list"
        )
    element = text("element", ELEMENT, "a data element tag of four digits, such as 7365")
    qualifier = text("qualifier", None, "a 1131 code list qualifier of 1 to 3 letters or digits")
    if qualifier and not QUALIFIER.fullmatch(qualifier):
        fail("qualifier", "a 1131 code list qualifier of 1 to 3 letters or digits", qualifier)
    partner = text("partner", None, "a party id such as 'NZ'")
    if partner and not PARTY.fullmatch(partner):
        fail("partner", "a party id such as 'NZ'", partner)
    description = text("description", None, "one line of text")
    if not description.isprintable():
        fail("description", "one line of text", description)
    closed = table.get("closed", True)
    if not isinstance(closed, bool):
        fail("closed", "true or false", closed)
    codes: list[tuple[str, str]] = []
    raw_codes = table.get("codes", {})
    if not isinstance(raw_codes, Mapping) or ("codes" in table and not raw_codes):
        fail("codes", "a table of one or more codes, each with its description", raw_codes)
        raw_codes = {}
    if len(raw_codes) > MAX_CODES:
        problems.append(f"codes: {len(raw_codes)} codes; a list holds at most {MAX_CODES}")
        raw_codes = {}
    for code, meaning in raw_codes.items():
        if not CODE.fullmatch(code):
            fail(f"codes.{code}", "a code of letters, digits and ' ._/-_', at most 35", code)
        elif not isinstance(meaning, str) or not meaning or not meaning.isprintable():
            fail(f"codes.{code}", "the code's description, one line of text", meaning)
        else:
            codes.append((code, meaning))
    stages: list[tuple[str, int]] = []
    raw_stages = table.get("stages", {})
    if not isinstance(raw_stages, Mapping):
        fail("stages", "a table of codes, each with a control stage", raw_stages)
        raw_stages = {}
    for code, stage in raw_stages.items():
        if code not in raw_codes:
            problems.append(f"stages.{code}: {code!r} is not one of the list's codes")
        elif not isinstance(stage, str) or stage not in STAGES:
            problems.append(
                f"stages.{code}: {stage!r} is not a control stage; {_suggest(str(stage), STAGES)}"
            )
        else:
            stages.append((code, STAGES[stage]))
    if len(problems) > before:
        return None
    return CodeList(
        name=name,
        agency=agency,
        element=element,
        codes=tuple(codes),
        qualifier=qualifier,
        partner=partner,
        description=description,
        closed=closed,
        stages=tuple(stages),
        source=source,
    )


def stage_name(value: int) -> str:
    return next((n for n, v in STAGES.items() if v == value), "UNSPECIFIED")
