"""Attacks through a drop folder (issue 14, family "files"): whoever can write to inbox/ plants
links, odd names and special files. Each case checks that nothing outside the folder was read,
moved or written, that nothing from outside was queued for a partner, that the refusal is
logged and in the trail (once), and that the folder still takes the files that are its own.
(File handling does not depend on the store: SQLite only.)"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.cli.demo import sample_aeo_status
from hub.connectors.dropfolder import DropFolder
from hub.core.envelope import build_envelope
from hub.core.errors import ConfigError
from hub.logs import TEXT_FORMAT, OneLineFormatter
from hub.runtime import RunningHub
from tests.conftest import Federation
from tests.test_dropfolder import add_folder, aeo_json, files
from tests.test_exchange import as_partner, signer_of


class Dropping:
    """CN with a drop folder (``[folders.main]``, CSV files in inbox/csv/, proto-json written
    out), its pass driven by hand; ``outside`` is a folder beside it an attacker points at."""

    def __init__(self, hub: RunningHub, root: Path, outside: Path) -> None:
        self.hub, self.root, self.outside = hub, root, outside
        [self.folder] = hub.folders

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    async def queued_aeo_ids(self) -> list[str]:
        return sorted(
            aeo
            for message, _ in await self.hub.hub.store.views.outbound()
            for aeo in json.loads(message.business_keys)["aeo"]
        )

    async def unsafe_rejections(self) -> list[str]:
        return [
            r.detail
            for r in await self.hub.hub.store.views.rejections()
            if r.reason == "folder-unsafe"
        ]


@pytest.fixture
async def dropping(tmp_path: Path, pki: Path) -> AsyncIterator[Dropping]:
    federation = Federation(tmp_path, pki)
    root = add_folder(
        federation,
        "CN",
        'settle_seconds = 0\noutbox_format = "proto-json"\n'
        '[folders.main.inbox_formats]\ncsv = "aeo-csv"',
    )
    outside = tmp_path / "outside"
    outside.mkdir()
    cn = await federation.start("CN")
    try:
        dropping = Dropping(cn, root, outside)
        await dropping.folder.stop()  # passes are run by hand
        yield dropping
    finally:
        await federation.stop_all()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_a_subfolder_made_a_link_is_neither_followed_nor_emptied(
    dropping: Dropping,
) -> None:
    (dropping.outside / "secret.json").write_bytes(aeo_json("CNAEO9001"))
    before = snapshot(dropping.outside)
    (dropping.inbox / "csv").rmdir()
    (dropping.inbox / "csv").symlink_to(dropping.outside)
    (dropping.inbox / "own.json").write_bytes(aeo_json("CNAEO1001"))

    assert await dropping.folder.run_pass() == 1  # its own file only
    assert await dropping.folder.run_pass() == 0
    assert snapshot(dropping.outside) == before  # read nothing there, moved nothing out
    assert await dropping.queued_aeo_ids() == ["CNAEO1001", "CNAEO1001"]  # NZ and SG
    assert files(dropping.root / "processed") == ["own.json"]
    [detail] = await dropping.unsafe_rejections()  # recorded once, not once per pass
    assert detail.startswith("inbox/csv is a symbolic link")

    # made a directory again: taken as before, and reported again should it change back
    (dropping.inbox / "csv").unlink()
    (dropping.inbox / "csv").mkdir()
    assert await dropping.folder.run_pass() == 0
    (dropping.inbox / "csv").rmdir()
    (dropping.inbox / "csv").symlink_to(dropping.outside)
    await dropping.folder.run_pass()
    assert len(await dropping.unsafe_rejections()) == 2


async def test_inbox_made_a_link_is_not_read(dropping: Dropping) -> None:
    (dropping.outside / "secret.json").write_bytes(aeo_json("CNAEO9001"))
    before = snapshot(dropping.outside)
    (dropping.inbox / "csv").rmdir()
    dropping.inbox.rmdir()
    dropping.inbox.symlink_to(dropping.outside)
    assert await dropping.folder.run_pass() == 0
    assert snapshot(dropping.outside) == before
    assert await dropping.queued_aeo_ids() == []
    assert [d.split(";")[0] for d in await dropping.unsafe_rejections()] == [
        "inbox is a symbolic link"
    ]


@pytest.mark.parametrize("level", ["processed", "rejected", ".work"])
async def test_nothing_is_moved_or_written_through_a_linked_destination(
    dropping: Dropping, level: str
) -> None:
    """processed/, rejected/ or .work/ made a link to a folder outside: no file lands there;
    a file that cannot go where it belongs stays in inbox/ or goes to rejected/ with its
    report, never outside."""
    (dropping.root / level).rename(dropping.root / f"{level}.old")
    (dropping.root / level).symlink_to(dropping.outside)
    (dropping.inbox / "good.json").write_bytes(aeo_json("CNAEO1002"))
    (dropping.inbox / "bad.json").write_bytes(b"{not json")
    await dropping.folder.run_pass()
    assert snapshot(dropping.outside) == {}
    inside = [
        data
        for name, data in snapshot(dropping.root).items()
        if not name.startswith(f"{level}.old") and not name.endswith(".error.json")
    ]
    assert sorted(inside) == sorted([aeo_json("CNAEO1002"), b"{not json"])  # each kept once
    assert await dropping.queued_aeo_ids() == ["CNAEO1002", "CNAEO1002"]  # queued once


async def test_an_outbox_folder_made_a_link_is_not_written_through(
    dropping: Dropping, pki: Path
) -> None:
    """Partners' messages are not written outside the folder; they wait (unacknowledged)
    until the outbox is a directory of the folder's own again."""
    (dropping.root / "outbox" / "proto-json").symlink_to(dropping.outside)
    store = dropping.hub.hub.store
    nz = as_partner(pki, "NZ", dropping.hub)
    try:
        envelope, _ = build_envelope(
            signer_of(pki, "NZ"),
            sender="NZ",
            recipient="CN",
            document=sample_aeo_status("NZ", "NZAEO1"),
            created_at=datetime.now(UTC),
            ttl=timedelta(days=1),
        )
        [receipt] = await nz.exchange("CN", [envelope], timeout=5)
        assert receipt.signature
    finally:
        await nz.close()
    with pytest.raises(OSError):
        await dropping.folder.write_outbox()
    assert snapshot(dropping.outside) == {}
    assert await store.inbound.acknowledged(dropping.folder.subscriber) == 0
    (dropping.root / "outbox" / "proto-json").unlink()
    assert await dropping.folder.write_outbox() == 1
    assert len(files(dropping.root / "outbox")) == 1


async def test_a_start_with_a_linked_level_is_refused(tmp_path: Path, pki: Path) -> None:
    federation = Federation(tmp_path, pki)
    root = add_folder(federation, "CN", "settle_seconds = 0")
    outside = tmp_path / "outside"
    outside.mkdir()
    root.mkdir(parents=True)
    (root / "inbox").symlink_to(outside)
    with pytest.raises(ConfigError) as refused:
        await federation.start("CN")
    assert refused.value.reason == "folder-unsafe"
    assert "'inbox'" in refused.value.message and "symbolic link" in refused.value.message
    assert list(outside.iterdir()) == []
    await federation.stop_all()


async def test_a_name_cannot_forge_a_log_line(
    dropping: Dropping, caplog: pytest.LogCaptureFixture
) -> None:
    """A newline in a file name does not start a line of its own in the hub's log: the hub's
    formatter keeps each record on one line, and the folder quotes names."""
    forged = "x.json\n2026-12-07 ERROR customs_hub.delivery: forged"
    (dropping.inbox / forged).write_bytes(b"{not json")
    with caplog.at_level(logging.INFO, logger="customs_hub"):
        assert await dropping.folder.run_pass() == 1
    formatter = OneLineFormatter(TEXT_FORMAT)
    lines = [formatter.format(record) for record in caplog.records]
    assert len(lines) >= 2  # the rejection, the file moved to rejected/
    assert all("\n" not in line for line in lines)
    # the rejection's line names its reason and line, not the translator's message (which
    # may quote the document); the folder's lines quote the name, escaped
    [rejection] = [line for line in lines if "rejected from" in line]
    assert "x.json" not in rejection and "at line 1" in rejection
    others = [line for line in lines if line != rejection]
    assert others and all("x.json\\n2026-12-07" in line for line in others)
    assert any("'x.json\\n2026-12-07" in record.getMessage() for record in caplog.records)


def test_the_folder_class_confines_itself() -> None:
    """DropFolder reaches files only through hub.files.Tree (a guard against a path-based
    call creeping back in)."""
    source = inspect.getsource(DropFolder)
    for call in ("os.open(", "os.replace(", "os.scandir(", ".mkdir(", "os.lstat(", " open("):
        assert call not in source, call
    assert os.O_NOFOLLOW  # the platform has it (Linux)


async def test_a_hard_link_to_a_file_elsewhere_is_not_read(dropping: Dropping) -> None:
    """A file in inbox/ that is a hard link (here to a file beside the folder, which the
    writer could read anyway) is not read: it goes to rejected/ with file-linked, the file
    outside keeps its content, and nothing is queued."""
    outside = dropping.outside / "secret.json"
    outside.write_bytes(aeo_json("CNAEO9002"))
    os.link(outside, dropping.inbox / "linked.json")
    assert await dropping.folder.run_pass() == 1
    assert outside.read_bytes() == aeo_json("CNAEO9002")
    assert await dropping.queued_aeo_ids() == []
    report = json.loads((dropping.root / "rejected" / "linked.json.error.json").read_text())
    assert [r["reason"] for r in report["refused"]] == ["file-linked"]
    assert [r.reason for r in await dropping.hub.hub.store.views.rejections()] == ["file-linked"]
