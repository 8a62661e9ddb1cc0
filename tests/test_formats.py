"""The format registry: the hub's own formats and partner-format plugins found through the
``customs_hub.formats`` entry point group, as an installed package would declare them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from adapters import formats
from hub.core.errors import ConfigError, TranslationError

CLI = [sys.executable, "-m", "hub.cli.main"]

# A partner format as a package of its own: protobuf text format, encode only.
PLUGIN = """
from dataclasses import dataclass
from google.protobuf import text_format


@dataclass(frozen=True)
class ProtoText:
    format_id: str = "proto-text"
    media_type: str = "text/plain"
    directions: frozenset = frozenset({"encode"})
    description: str = "protobuf text format, for reading"

    def decode(self, data, source="document"):
        raise NotImplementedError

    def encode(self, message):
        return text_format.MessageToString(message).encode()


def make(limits):
    return ProtoText()


def wrong_id(limits):
    return ProtoText(format_id="something-else")
"""


def plugin_dist(root: Path, entries: dict[str, str]) -> Path:
    """A package and its dist-info, as pip would install it, on a folder for sys.path."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "proto_text_format.py").write_text(PLUGIN)
    info = root / "proto_text_format-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: proto-text-format\nVersion: 1.0\n")
    lines = "".join(f"{name} = {value}\n" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[customs_hub.formats]\n{lines}")
    return root


@pytest.fixture
def fresh_registry() -> Iterator[None]:
    formats.discovered.cache_clear()
    yield
    formats.discovered.cache_clear()


def test_the_hubs_own_formats_come_through_entry_points(fresh_registry: None) -> None:
    found = {entry.format_id: entry.source for entry in formats.discovered()}
    assert found == {
        "aeo-csv": "adapters.formats:aeo_csv",
        "cds-movement": "adapters.formats:cds_movement",
        "edifact": "adapters.formats:edifact",
        "ncts-p6": "adapters.formats:ncts_p6",
        "proto-json": "adapters.formats:proto_json",
        "wco-xml": "adapters.formats:wco_xml",
    }
    # every one is declared in the package metadata, not only known from the source tree
    declared = {p.name: p.value for p in entry_points(group=formats.GROUP)}
    assert declared == found
    for format_id, translator in formats.registry().items():
        assert translator.format_id == format_id and translator.description
        assert translator.directions <= {"decode", "encode"} and "decode" in translator.directions


def test_a_plugin_package_adds_a_format(
    tmp_path: Path, fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(
        str(plugin_dist(tmp_path, {"proto-text": "proto_text_format:make"}))
    )
    translators = formats.registry()
    assert set(translators) == {*formats.BUILTIN, "proto-text"}
    assert formats.translator_for("proto-text", direction="encode").media_type == "text/plain"
    with pytest.raises(TranslationError) as caught:
        formats.translator_for("proto-text", direction="decode")
    assert caught.value.reason == "unsupported-direction"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"wco-xml": "proto_text_format:make"}, "claims the hub's own format id 'wco-xml'"),
        ({"proto-text": "proto_text_format:wrong_id"}, "its translator says 'something-else'"),
        ({"proto-text": "no_such_module:make"}, "cannot be loaded: ModuleNotFoundError"),
        ({"proto-text": "proto_text_format:PLUGIN_MISSING"}, "cannot be loaded"),
    ],
)
def test_a_faulty_plugin_is_refused_by_name(
    tmp_path: Path,
    fresh_registry: None,
    monkeypatch: pytest.MonkeyPatch,
    entries: dict[str, str],
    message: str,
) -> None:
    monkeypatch.syspath_prepend(str(plugin_dist(tmp_path, entries)))
    with pytest.raises(ConfigError, match=message) as caught:
        formats.registry()
    assert caught.value.reason == "format-plugin-invalid"


@pytest.mark.slow
def test_cli_lists_formats_and_translates_through_a_plugin(tmp_path: Path) -> None:
    root = plugin_dist(tmp_path / "site", {"proto-text": "proto_text_format:make"})
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.getcwd()])}
    listed = subprocess.run([*CLI, "formats", "--json"], capture_output=True, text=True, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["format"]: r for r in map(json.loads, listed.stdout.splitlines())}
    assert rows["proto-text"]["directions"] == ["encode"]
    assert rows["proto-text"]["source"] == "proto_text_format:make"
    assert rows["wco-xml"]["directions"] == ["decode", "encode"]
    document = tmp_path / "aeo.json"
    document.write_text(
        json.dumps(
            {"aeoStatus": {"issuingAdministration": "CN", "aeoId": "CNAEO1", "revision": "3"}}
        )
    )
    done = subprocess.run(
        [*CLI, "translate", str(document), "--to", "proto-text"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert 'issuing_administration: "CN"' in done.stdout and "revision: 3" in done.stdout
    back = subprocess.run(
        [*CLI, "translate", str(document), "--from", "proto-text", "--to", "proto-json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert back.returncode == 2 and "unsupported-direction" in back.stderr
