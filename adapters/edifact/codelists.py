"""The code lists the ``edifact`` translator checks and maps partners' codes with: the lists the
hub ships (TOML files in adapters/edifact/code-lists/), those plugins register through the entry
point group ``customs_hub.code_lists``, and those a hub.toml configures (``[code_lists.<name>]``,
read by hub/config.py). What a list is, and the one reader of its table, are in
hub/core/codelists.py; docs/formats/code-lists.md describes all three sources and every list
shipped.

A plugin entry names a factory taking nothing and returning a ``CodeList`` or several, e.g.
``nz-gis = "acme_nz.lists:gis"`` under ``[project.entry-points."customs_hub.code_lists"]``.

What it must never do: let a plugin or a configuration replace a shipped list (or one another:
two lists for one agency, element and qualifier are refused), or read a file outside its own
folder.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from functools import cache
from importlib.metadata import entry_points
from pathlib import Path

from hub.core.codelists import (
    MAX_LIST_BYTES,
    NO_CODE_LISTS,
    CodeList,
    CodeLists,
    combined,
    parse,
)
from hub.core.errors import ConfigError

GROUP = "customs_hub.code_lists"
SHIPPED = Path(__file__).resolve().parent / "code-lists"
REASON = "code-list-invalid"


@cache
def shipped() -> tuple[CodeList, ...]:
    """The lists in adapters/edifact/code-lists/, one per file, named after it; a file that does
    not read as a list is a ConfigError naming it (a broken installation)."""
    found = []
    for path in sorted(SHIPPED.glob("*.toml")):
        data = path.read_bytes()
        if len(data) > MAX_LIST_BYTES:
            raise ConfigError(f"shipped code list {path.name} is too large", reason=REASON)
        try:
            table = tomllib.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(
                f"shipped code list {path.name} is not valid TOML: {exc}", reason=REASON
            ) from None
        problems: list[str] = []
        code_list = parse(path.stem, table, problems, source=f"shipped {path.name}")
        if code_list is None:
            raise ConfigError(
                f"shipped code list {path.name}: " + "; ".join(problems), reason=REASON
            )
        found.append(code_list)
    return tuple(found)


def load_plugin(name: str, value: str, factory: Callable[[], object]) -> tuple[CodeList, ...]:
    """The lists one plugin's factory gives, or a ConfigError naming the plugin (the entry
    point ``name`` = ``value``) when it fails or gives anything but code lists."""
    try:
        made = factory()
    except Exception as exc:  # noqa: BLE001 - any failure of a plugin is reported as its own
        raise ConfigError(
            f"code list plugin {name} ({value}) failed: {type(exc).__name__}: {exc}",
            reason=REASON,
        ) from None
    lists = (made,) if isinstance(made, CodeList) else made
    if not isinstance(lists, Iterable) or isinstance(lists, str | bytes):
        lists = (lists,)
    result = tuple(lists)
    if not result or not all(isinstance(c, CodeList) for c in result):
        raise ConfigError(
            f"code list plugin {name} ({value}) gave no CodeList (a factory returns one or "
            "several hub.core.codelists.CodeList)",
            reason=REASON,
        )
    for code_list in result:
        problems: list[str] = []
        table = {
            "agency": code_list.agency,
            "element": code_list.element,
            "qualifier": code_list.qualifier,
            "partner": code_list.partner,
            "description": code_list.description,
            "closed": code_list.closed,
            "codes": dict(code_list.codes),
        }
        parse(code_list.name, table, problems)
        if problems:
            raise ConfigError(
                f"code list plugin {name} ({value}): list {code_list.name}: " + "; ".join(problems),
                reason=REASON,
            )
    return result


@cache
def plugins() -> tuple[tuple[str, tuple[CodeList, ...]], ...]:
    """Each plugin's lists, by entry point, loaded once per process."""
    found = []
    for point in sorted(entry_points(group=GROUP), key=lambda p: p.name):
        try:
            factory = point.load()
        except Exception as exc:  # noqa: BLE001 - any import failure of a plugin is reported
            raise ConfigError(
                f"code list plugin {point.name} ({point.value}) cannot be loaded: "
                f"{type(exc).__name__}: {exc}",
                reason=REASON,
            ) from None
        if not callable(factory):
            raise ConfigError(
                f"code list plugin {point.name} ({point.value}) is not a factory", reason=REASON
            )
        lists = load_plugin(point.name, point.value, factory)
        found.append((f"code list plugin {point.name} ({point.value})", lists))
    return tuple(found)


def available(
    configured: CodeLists = NO_CODE_LISTS,
    plugin_lists: Iterable[tuple[str, Iterable[CodeList]]] | None = None,
) -> CodeLists:
    """Every list the translator uses: the shipped ones, then the plugins' (``plugin_lists``,
    by default those of installed packages), then ``configured`` (hub.toml). A list that
    would replace an earlier one is a ConfigError naming both."""
    return combined(
        [
            ("the hub's shipped lists", shipped()),
            *(plugins() if plugin_lists is None else plugin_lists),
            ("hub.toml [code_lists]", configured),
        ]
    )
