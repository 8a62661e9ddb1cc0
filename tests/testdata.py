"""Where the test data lives: copies in the repository (tests/SOURCES.md says where each set came
from), so that a clone alone runs the suite. Tests and benches name these paths, never a folder
outside the repository."""

from __future__ import annotations

import hashlib
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# Copies of public corpora, byte for byte (tests/SOURCES.md, tests/NOTICE).
CORPUS = TESTS / "corpus"
CDS_SAMPLES = (
    CORPUS / "hmrc-customs-declarations/public/api/conf/3.0/examples/annotated_XML_samples"
)
NCTS_CORPUS = CORPUS / "hmrc-transit-movements-validator"
MERKLE_VECTORS = TESTS / "vectors" / "merkle"
# The project's own test files.
DATA = TESTS / "data"


def git_blob_id(data: bytes) -> str:
    """A file's id in a git repository, so that a copy can be compared with its source's."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # noqa: S324 - git's id
