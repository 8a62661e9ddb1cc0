"""Attacks on the trail (issue 14, family "trail"): rows of the stored trail altered after the
fact (a leaf edited, with or without its stored hash; entries deleted, renumbered, reordered,
inserted; the newest ones cut off) and a forged checkpoint. The offline verification of an
export catches each, names where, and vouches for nothing from there on. (Growing the trail by
knocking on the partner port: tests/adversarial/test_tls.py.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from hub.store.rawsql import Tx
from tests.test_trail_export import TAMPERING, TARGET, Trail, exported


@pytest.mark.parametrize(("name", "alter", "expected"), TAMPERING, ids=[t[0] for t in TAMPERING])
async def test_altered_rows_are_caught(
    signed_trail: Trail,
    tmp_path: Path,
    name: str,
    alter: Callable[[Trail], list[Callable[[Tx], None]]],
    expected: int | tuple[int, int],
) -> None:
    for statement in alter(signed_trail):
        await signed_trail.store.db.transaction(statement)
    report = await exported(signed_trail, tmp_path / "export")
    assert not report.ok, name
    summary = report.summary()
    assert summary.startswith("BAD at index"), summary
    if isinstance(expected, int):
        assert report.first_bad == expected, summary
    else:
        assert report.first_bad is None and report.bad_range == expected, summary
        assert report.bad_range[0] <= TARGET < report.bad_range[1]
    # nothing from the alteration on is vouched for
    assert report.verified_size <= (expected if isinstance(expected, int) else expected[0])


async def test_a_forged_checkpoint_is_caught(signed_trail: Trail, tmp_path: Path) -> None:
    notes = await signed_trail.store.trail.checkpoints()
    forged = notes[1].note.replace(b"\n20\n", b"\n19\n")
    await signed_trail.store.db.transaction(
        signed_trail.sql("UPDATE trail_checkpoint SET note = ? WHERE size = ?", forged, 20)
    )
    report = await exported(signed_trail, tmp_path / "export")
    assert not report.ok
    assert "does not verify" in report.problem and "00000000000000000020.note" in report.problem
