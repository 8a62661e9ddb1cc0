"""One registry of every reason code (hub/core/reasons.py), held against the code and against
docs/adr/0002-status-codes.md both ways (issue 15): every reason the code raises is in the
registry with the status it is raised with, every registered reason is raised somewhere, and
the ADR's table is the registry's, so a reason cannot be added, changed or dropped without the
documentation saying so."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

from hub.core.errors import HubError, Status
from hub.core.reasons import REASONS, markdown

ROOT = Path(__file__).resolve().parent.parent
ADR = ROOT / "docs" / "adr" / "0002-status-codes.md"
# Modules that raise an error with a reason received from elsewhere (the audit CLI relays the
# reason a hub answered it); any other reason the scan cannot read fails the test below.
RELAYS = {"hub/cli/audit.py"}
UNREAD: list[str] = []
# Helpers that carry a reason, as their first argument, to an error class raised later.
CARRIERS = {"_RowError": "TranslationError"}  # adapters/aeocsv.py: a row's refusal


def error_classes() -> dict[str, type[HubError]]:
    """Every HubError subclass defined in hub/ and adapters/, by name."""
    found: dict[str, type[HubError]] = {}
    for path in [*ROOT.glob("hub/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:2] == ("hub", "pb") or parts[-1] == "__main__":
            continue
        module = importlib.import_module(".".join(p for p in parts if p != "__init__"))
        for name, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, HubError):
                found[name] = value
    return found


def raised() -> dict[str, set[Status]]:
    """Each reason the code raises, with the statuses it is raised with: a literal
    ``reason="..."`` (or a module constant holding one) in a call of an error class, and each
    class's default reason. A reason
    passed on (``reason=error.reason``: an error restated, or the audit CLI relaying what a hub
    answered) was counted where it was first raised."""
    classes = error_classes()
    out: dict[str, set[Status]] = {}
    for cls in classes.values():
        out.setdefault(cls.default_reason, set()).add(cls.status)
    for path in [*ROOT.glob("hub/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        tree = ast.parse(path.read_text())
        named = {  # module constants such as SYNTAX = "edifact-syntax"
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            if name in CARRIERS and node.args and isinstance(node.args[0], ast.Name):
                carried = named[node.args[0].id]
                out.setdefault(carried, set()).add(classes[CARRIERS[name]].status)
            cls = classes.get(name)
            for keyword in node.keywords:
                if keyword.arg != "reason" or cls is None:
                    continue
                values = [keyword.value]
                if isinstance(keyword.value, ast.IfExp):  # "a" if ... else "b"
                    values = [keyword.value.body, keyword.value.orelse]
                for value in values:
                    if isinstance(value, ast.Constant) and isinstance(value.value, str):
                        out.setdefault(value.value, set()).add(cls.status)
                    elif isinstance(value, ast.Name) and value.id in named:
                        out.setdefault(named[value.id], set()).add(cls.status)
                    elif not (isinstance(value, ast.Attribute) and value.attr == "reason"):
                        where = f"{path.relative_to(ROOT)}:{node.lineno}"
                        if where.split(":")[0] not in RELAYS:
                            UNREAD.append(where)
    return out


def test_every_reason_raised_is_registered_with_its_status() -> None:
    registered = {reason: set(entry.statuses) for reason, entry in REASONS.items()}
    unregistered = {
        reason: sorted(s.name for s in statuses - registered.get(reason, set()))
        for reason, statuses in raised().items()
        if not statuses <= registered.get(reason, set())
    }
    assert unregistered == {}


def test_every_registered_reason_is_raised() -> None:
    assert sorted(set(REASONS) - set(raised())) == []


def test_every_reason_given_to_an_error_can_be_read_here() -> None:
    """A literal, a module constant, or another error's ``.reason``: nothing the scan skips."""
    UNREAD.clear()
    raised()
    assert UNREAD == []


def test_the_adr_holds_the_registry() -> None:
    """Regenerate with: python -m hub.core.reasons > the table in docs/adr/0002-status-codes.md."""
    text = ADR.read_text()
    begin, end = "<!-- reasons: python -m hub.core.reasons -->\n", "<!-- /reasons -->"
    table = text[text.index(begin) + len(begin) : text.index(end)]
    assert table == markdown()
