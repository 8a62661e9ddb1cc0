"""The example documents in examples/ are what examples/generate.py makes today, every one
decodes with the hub's translators, and every one the README names is there."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

from adapters.base import decode_all
from adapters.formats import detect, registry
from tests.testdata import ROOT

EXAMPLES = ROOT / "examples"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("examples_generate", EXAMPLES / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documents() -> list[Path]:
    """The example documents: the files of examples/ but its generator (and whatever Python
    caches beside it)."""
    return sorted(p for p in EXAMPLES.iterdir() if p.is_file() and p.suffix not in {".py", ".pyc"})


def test_the_committed_examples_are_what_the_generator_makes() -> None:
    made: dict[str, bytes] = generator().examples()
    committed = [p.name for p in documents()]
    assert committed == sorted(made), "regenerate with: python examples/generate.py"
    for name, content in made.items():
        assert (EXAMPLES / name).read_bytes() == content, (
            f"{name} is stale: python examples/generate.py"
        )


def test_every_example_is_detected_and_decodes_without_a_refusal() -> None:
    formats = registry()
    expected = {".json": "proto-json", ".xml": "wco-xml", ".edi": "edifact", ".csv": "aeo-csv"}
    for path in documents():
        data = path.read_bytes()
        assert detect(data, formats) == expected[path.suffix], path.name
        items = decode_all(formats[expected[path.suffix]], data, path.name)
        assert items and all(item.error is None for item in items), path.name


def test_every_example_the_readme_names_exists() -> None:
    named = set(re.findall(r"\bexamples/[\w.-]+", (ROOT / "README.md").read_text()))
    assert {"examples/declaration.json", "examples/declaration.xml"} <= named
    missing = sorted(name for name in named if not (ROOT / name).is_file())
    assert not missing, missing
