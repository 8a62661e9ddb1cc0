"""The pure core stays pure (issue 15): its modules take bytes and values and give values or
HubError, so importing them loads no gRPC, database or XML library. Each is imported in a fresh
interpreter, where nothing else could have loaded those first."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The modules of the pure core and of the trail, and the configuration they are read from.
PURE = [
    *sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for folder in ("hub/core", "hub/trail")
        for path in (ROOT / folder).glob("*.py")
    ),
    "hub.config",
]
# What the core must not load: the rpc layer's, the store's and the translators' libraries.
FORBIDDEN = ["grpc", "sqlalchemy", "sqlmodel", "asyncpg", "aiosqlite", "lxml"]


@pytest.mark.parametrize("module", PURE)
def test_a_core_module_loads_no_grpc_database_or_xml_library(module: str) -> None:
    probe = (
        "import importlib, json, sys; "
        f"importlib.import_module({module!r}); "
        f"print(json.dumps(sorted(n for n in {FORBIDDEN!r} if n in sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(done.stdout) == [], f"importing {module} loads {done.stdout.strip()}"


def test_the_probe_sees_a_forbidden_library() -> None:
    """The check above can fail: importing the rpc layer loads grpc."""
    probe = "import sys, hub.rpc.status; print('grpc' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "True"


def import_graph() -> dict[str, set[str]]:
    """Every module of hub/ and adapters/ (generated hub/pb aside) and the modules it imports
    from either, at any depth in the file (function-level imports count)."""
    modules: dict[str, Path] = {}
    for path in [*ROOT.glob("hub/**/*.py"), *ROOT.glob("adapters/**/*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[:2] == ("hub", "pb"):
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path

    def known(target: str) -> str | None:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        return target or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # "from package import module" imports the module, not the package's body
                targets = [
                    f"{node.module}.{a.name}"
                    if f"{node.module}.{a.name}" in modules
                    else node.module
                    for a in node.names
                ]
            else:
                continue
            for target in targets:
                found = known(target)
                if found is not None and found != name:
                    graph[name].add(found)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other, directly or around a circle."""
    reach = {name: set() for name in graph}
    for name in graph:
        todo = list(graph[name])
        while todo:
            other = todo.pop()
            if other not in reach[name]:
                reach[name].add(other)
                todo.extend(graph[other])
    groups = {
        frozenset({n} | {m for m in reach[n] if n in reach[m]}) for n in graph if n in reach[n]
    }
    return sorted(sorted(g) for g in groups)


def test_no_module_imports_itself_around_a_circle() -> None:
    assert cycles(import_graph()) == []


# The house, bottom up: a module imports only from its own floor or below. The generated
# messages (hub.pb, seen here as "hub") are on the ground floor with the pure core.
FLOORS = [
    ("hub", "hub.core", "hub.trail", "hub.config"),
    ("adapters", "hub.files"),
    ("hub.store",),
    ("hub.app",),
    ("hub.rpc", "hub.connectors"),
    ("hub.runtime",),
    ("hub.cli",),
]


def floor_of(module: str) -> int:
    """The floor of the longest package prefix ``module`` is under."""
    best, found = "", -1
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            under = module == prefix or module.startswith(prefix + ".")
            if under and len(prefix) > len(best):
                best, found = prefix, level
    assert found >= 0, f"{module} is on no floor: add its package to FLOORS"
    return found


def upward(graph: dict[str, set[str]]) -> list[tuple[str, str]]:
    """The imports that go from a floor to one above it."""
    return sorted(
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if floor_of(target) > floor_of(name)
    )


def test_no_module_imports_from_a_floor_above_its_own() -> None:
    """Layers: the pure core and the trail import nothing of the shell; translators import
    from hub/ only the core; the store knows no procedure; procedures know no gRPC; only the
    composition root and the command line see everything."""
    assert upward(import_graph()) == []


def test_adapters_import_only_the_core_of_the_hub() -> None:
    graph = import_graph()
    wrong = sorted(
        (name, target)
        for name, targets in graph.items()
        if name.startswith("adapters")
        for target in targets
        if target.startswith("hub") and floor_of(target) != 0
    )
    assert wrong == []


def test_the_graph_check_sees_circles_and_layers() -> None:
    """The two checks above can fail."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert upward({"hub.core.envelope": {"hub.store.db"}, "hub.rpc.partner": {"hub.app.hub"}}) == [
        ("hub.core.envelope", "hub.store.db")
    ]
    graph = import_graph()
    assert (
        "hub.store.db" in graph["hub.app.hub"] and "hub.core.errors" in graph["hub.core.envelope"]
    )


def test_keys_and_certificates_are_read_from_disk_in_one_module() -> None:
    """hub/app/keys.py reads every key and certificate the configuration names (pki.py writes
    them): nowhere else reads one of those files."""
    named = re.compile(
        r"\.(tls_key|tls_cert|signing_key|signing_cert|signing_certs|trust_anchor|trail_key|"
        r"audit_key)\b[^\n]*\.read_(bytes|text)\(|read_ed25519_key\(|load_pem_private_key\("
        r"[^)]*read_bytes"
    )
    found = {
        str(path.relative_to(ROOT))
        for path in [*ROOT.glob("hub/**/*.py"), *ROOT.glob("adapters/**/*.py")]
        if named.search(path.read_text())
    }
    assert found == {"hub/app/keys.py"}


@pytest.mark.parametrize("folder", ["hub/core", "hub/trail"])
def test_ruff_bans_the_shells_libraries_in_the_pure_core(folder: str) -> None:
    """The same boundary at lint time (hub/core/ruff.toml, hub/trail/ruff.toml): an import of
    grpc, the database or lxml in the core is a lint error, and elsewhere it is not."""
    probe = (
        "import grpc\nimport sqlalchemy\nfrom lxml import etree\n\nprint(grpc, sqlalchemy, etree)\n"
    )
    ruff = Path(sys.executable).parent / "ruff"

    def banned(path: str) -> int:
        done = subprocess.run(
            [str(ruff), "check", "--select", "TID251", "--stdin-filename", path, "-"],
            input=probe,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
            check=False,
        )
        return done.stdout.count("TID251")

    assert banned(f"{folder}/probe.py") == 3
    assert banned("hub/rpc/probe.py") == 0


@pytest.mark.parametrize("folder", ["hub/app", "hub/store"])
def test_ruff_bans_grpc_in_the_procedures_and_the_store(folder: str) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    done = subprocess.run(
        [str(ruff), "check", "--select", "TID251", "--stdin-filename", f"{folder}/probe.py", "-"],
        input="import grpc\n\nprint(grpc)",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.stdout.count("TID251") == 1
