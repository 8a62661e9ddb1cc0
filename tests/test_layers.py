"""The pure core stays pure (issue 15): its modules take bytes and values and give values or
HubError, so importing them loads no gRPC, database or XML library. Each is imported in a fresh
interpreter, where nothing else could have loaded those first."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# The modules of the pure core and of the trail (hub/core/ and hub/trail/ once moved there).
PURE = [
    "hub.errors",
    "hub.limits",
    "hub.config",
    "hub.envelope",
    "hub.signing",
    "hub.trust",
    "hub.routing",
    "hub.messages",
    "hub.auth",
    "hub.admission",
    "hub.merkle",
    "hub.checkpoint",
    "hub.trail",
    "hub.treestore",
    "hub.trailcheck",
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
