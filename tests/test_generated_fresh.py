"""Committed generated files are exactly what their generators produce now:
hub/pb from protos/ (protos/generate.py) and the WCO schema order table from schemas/wco."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _generate_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "generate_protos", ROOT / "protos" / "generate.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["generate_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    generated = _generate_module().generate(tmp_path)
    assert generated, "protoc produced nothing"
    committed = ROOT / "hub" / "pb"
    stale = []
    for path in sorted(tmp_path.rglob("*")):
        if path.is_file():
            rel = path.relative_to(tmp_path)
            target = committed / rel
            if not target.exists() or target.read_bytes() != path.read_bytes():
                stale.append(str(rel))
    extra = [
        str(p.relative_to(committed))
        for p in committed.rglob("*")
        if p.is_file()
        and "__pycache__" not in p.parts
        and not (tmp_path / p.relative_to(committed)).exists()
    ]
    assert not stale, f"hub/pb is stale; run `python protos/generate.py`: {stale}"
    assert not extra, f"hub/pb has files protoc no longer makes: {extra}"


@pytest.mark.slow
def test_wco_schema_table_is_fresh() -> None:
    from adapters.wco.schema_table import TABLE_FILE, build_table, render

    assert TABLE_FILE.read_text(encoding="utf-8") == render(build_table()), (
        "adapters/wco/schema_table.json is stale; run `python -m adapters.wco.schema_table`"
    )
