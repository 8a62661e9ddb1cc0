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

# The modules of the pure core and of the trail (hub/core/ and hub/trail/ once moved there).
PURE = [
    "hub.core.errors",
    "hub.core.limits",
    "hub.core.reasons",
    "hub.core.outbox",
    "hub.config",
    "hub.core.envelope",
    "hub.core.signing",
    "hub.core.trust",
    "hub.core.routing",
    "hub.core.messages",
    "hub.core.auth",
    "hub.core.admission",
    "hub.trail.merkle",
    "hub.trail.checkpoint",
    "hub.trail.events",
    "hub.trail.tree",
    "hub.trail.verify",
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


ROOT = Path(__file__).resolve().parent.parent


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


def test_the_core_imports_only_the_core_and_adapters_only_the_core() -> None:
    """Layers: the pure core (PURE) imports nothing of the shell; the translators in adapters/
    import from hub/ only its pure core and the generated messages."""
    graph = import_graph()
    core = set(PURE) | {"hub"}
    wrong = {
        (name, target)
        for name, targets in graph.items()
        for target in targets
        if (name in core or name.startswith("adapters"))
        and target.startswith("hub")
        and target not in core
    }
    assert sorted(wrong) == []


def test_the_graph_check_sees_circles_and_layers() -> None:
    """The two checks above can fail."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
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
