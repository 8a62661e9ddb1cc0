"""The README's table of the adversarial suite says how many cases each family holds: checked
against what pytest collects, so the table cannot drift from the suite."""

from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter

from tests.testdata import ROOT

ROW = re.compile(r"^\| (\w+) \| `tests/adversarial/(test_\w+\.py)` \| (\d+) \|", re.MULTILINE)


def collected() -> Counter[str]:
    """Test items per file of tests/adversarial, as pytest collects them."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-p", "no:xdist", "tests/adversarial"],
        cwd=ROOT, capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    items = [line for line in run.stdout.splitlines() if "::" in line]
    return Counter(line.split("::")[0].removeprefix("tests/adversarial/") for line in items)


def test_the_readme_counts_the_adversarial_suite_by_family() -> None:
    table = {name: (family, int(count)) for family, name, count in ROW.findall(
        (ROOT / "README.md").read_text())}  # fmt: skip
    found = collected()
    assert {name: count for name, (_, count) in table.items()} == dict(found)
    # every family the issues name has its file (issue 14's ten, issue 20's telemetry)
    families = {family for family, _ in table.values()}
    assert families == {
        "signatures", "replay", "routing", "xml", "tls", "resources", "faults", "trail",
        "tokens", "files", "telemetry",
    }  # fmt: skip
    total = re.search(r"^\| all \| \| (\d+) \|", (ROOT / "README.md").read_text(), re.MULTILINE)
    assert total is not None and int(total.group(1)) == sum(found.values())
