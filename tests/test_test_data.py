"""The test data is in the repository, complete, unedited and attributed; nothing reads a folder
outside the repository, so a clone alone runs the suite and the benches."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from tests.testdata import CORPUS, MERKLE_VECTORS, ROOT, TESTS, git_blob_id

SOURCES = TESTS / "SOURCES.md"
COPIED = [CORPUS, MERKLE_VECTORS]
# Folders of a checkout that are not the project's text, where git cannot say what is tracked.
NOT_OURS = {
    ".git",
    ".venv",
    "venv",
    "build",
    "dist",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".sh", ".yml", ".yaml", ".json"}
# The folder beside the checkout that earlier sessions read data from. This file, which names it
# in its patterns, is the one file the scan leaves out.
SIBLING = "shared"
OUTSIDE = re.compile(
    rf"\.\.[/\\]+{SIBLING}\b"  # up one level, then into it
    rf"|\b{SIBLING}/[\w.-]"  # a path into it: shared/corpus, shared/STYLE.md
    rf"|[\"']{SIBLING}[\"']"  # its name as a path part: / "shared", joinpath("shared")
)


def listed() -> dict[str, tuple[int, str]]:
    """tests/SOURCES.md: each copied file's path under tests/, with its size and blob id."""
    files: dict[str, tuple[int, str]] = {}
    section = ""
    for line in SOURCES.read_text().splitlines():
        if heading := re.fullmatch(r"## `([^`]+)`", line):
            section = heading.group(1)
        elif row := re.fullmatch(r"\| `([^`]+)` \| (\d+) \| `([0-9a-f]{40})` \|", line):
            assert section, f"a file listed before any set: {line}"
            files[f"{section}/{row.group(1)}"] = (int(row.group(2)), row.group(3))
    return files


def test_every_copied_file_is_listed_with_its_source_id_and_every_listed_file_is_there() -> None:
    expected = listed()
    assert len(expected) > 800, "tests/SOURCES.md lists too few files: is its format broken?"
    for folder in COPIED:
        assert folder.is_dir(), f"{folder} is missing (tests/SOURCES.md lists what belongs there)"
    found = {
        path.relative_to(TESTS).as_posix(): path
        for folder in COPIED
        for path in folder.rglob("*")
        if path.is_file()
    }
    assert sorted(found) == sorted(expected)
    for name, path in found.items():
        data = path.read_bytes()
        assert (len(data), git_blob_id(data)) == expected[name], f"{name} differs from its source"


def test_each_copied_set_keeps_its_licence_and_is_in_the_notice() -> None:
    notice = (TESTS / "NOTICE").read_text()
    sets = [p for p in CORPUS.iterdir() if p.is_dir()] + [MERKLE_VECTORS]
    for folder in sets:
        assert "Apache License" in (folder / "LICENSE").read_text(), folder
        assert folder.relative_to(ROOT).as_posix() + "/" in notice, folder


def project_text_files() -> list[Path]:
    """The project's own text files: what git tracks or would add, else the tree without the
    folders above; never the copied data."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT,
            capture_output=True,
            check=True,
        ).stdout
        candidates = [ROOT / name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):  # no git, or not a checkout
        candidates = [
            path
            for path in ROOT.rglob("*")
            if not NOT_OURS & set(path.relative_to(ROOT).parts)
            and not any(part.endswith(".egg-info") for part in path.relative_to(ROOT).parts)
        ]
    return [
        path
        for path in candidates
        if path.is_file()
        and not path.is_relative_to(CORPUS)
        and not path.is_relative_to(MERKLE_VECTORS)
        and path != Path(__file__)
        and (path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "run"})
    ]


def test_nothing_reads_a_folder_beside_the_repository() -> None:
    files = project_text_files()
    assert ROOT / "README.md" in files and TESTS / "conftest.py" in files
    offending = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in files
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not offending, "these read data from outside the repository:\n" + "\n".join(offending)


def test_the_guard_catches_the_ways_a_path_leaves_the_repository() -> None:
    caught = [
        'Path(__file__).parents[2] / "' + SIBLING + '" / "corpus"',
        "see ../" + SIBLING + "/corpus/README.md",
        "ROOT.parent / '" + SIBLING + "' / 'vectors'",
        'X = ROOT.parent / "' + SIBLING + '"',
        'ROOT.parent.joinpath("' + SIBLING + '")',
        'os.path.join(os.pardir, "' + SIBLING + '", "corpus")',
        'ROOT / ".." / "' + SIBLING + '"',
        "/" + SIBLING + "/vectors/merkle",
        "as " + SIBLING + "/STYLE.md says",
        "..\\" + SIBLING + "\\corpus",
    ]
    allowed = ["goods declarations " + SIBLING + " with partners", "a " + SIBLING + " core"]
    assert [text for text in caught if not OUTSIDE.search(text)] == []
    assert [text for text in allowed if OUTSIDE.search(text)] == []
