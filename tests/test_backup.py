"""Backup and restore (issue 16, docs/backup.md): real hubs over mTLS on loopback, a backup of
a running hub through the command line, a restore into the stopped hub's store, on SQLite (the
online backup API) and PostgreSQL (pg_dump and pg_restore). After a restore the trail verifies
against its signed checkpoints and the partner's resent message gets its first receipt; every
refused restore leaves the store as it was."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import sqlite3
import tarfile
from pathlib import Path

import pytest

from hub.app.keys import trail_verifier
from hub.cli.demo import sample_declaration
from hub.cli.main import main
from hub.cli.trailfiles import export_trail, verify_folder
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.store import migrate
from hub.store.backup import sqlite_path
from hub.store.backupfile import MANIFEST
from hub.store.db import Store
from tests.conftest import Federation, _new_pg_database
from tests.test_exchange import as_partner, eventually, submit


def declaration(lrn: str) -> spb.SubmitRequest:
    document = sample_declaration()
    document.functional_reference_id = lrn
    return spb.SubmitRequest(goods_declaration=document)


async def cli(*argv: str) -> int:
    """The command line, off the test's event loop (it runs its own)."""
    return await asyncio.to_thread(main, list(argv))


async def delivered(federation: Federation, message_id: str) -> tuple[bytes, bytes]:
    """The envelope CN sent and the signed receipt NZ gave it, once CN has the receipt."""
    cn = federation.running["CN"]

    async def found():  # type: ignore[no-untyped-def]
        for outbound, receipt in await cn.hub.store.views.outbound():
            if outbound.message_id == message_id and receipt is not None:
                return outbound.envelope, receipt.signed_receipt
        return None

    return await eventually(found)  # type: ignore[no-any-return]


async def send(federation: Federation, lrn: str) -> tuple[str, bytes, bytes]:
    [queued] = await submit(federation.running["CN"], declaration(lrn))
    assert queued.recipient == "NZ"
    envelope, receipt = await delivered(federation, queued.message_id)
    return queued.message_id, envelope, receipt


async def store_state(federation: Federation, party: str) -> tuple[int, list[str]]:
    """The trail's size and the inbound message ids of ``party``'s store, read with the hub
    stopped."""
    store = Store(federation.configs[party].store_url)
    try:
        return await store.trail.size(), [m.message_id for m in await store.views.inbound()]
    finally:
        await store.close()


async def test_a_restored_hub_verifies_its_trail_and_knows_what_it_received(
    federation: Federation, pki: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = federation.configs["NZ"]
    toml = str(config.path)
    await federation.start("CN")
    nz = await federation.start("NZ")
    before_id, before_envelope, before_receipt = await send(federation, "LRN-BEFORE")
    await nz.hub.audit.checkpoint()  # a signed checkpoint inside the backup
    capsys.readouterr()

    # a backup of the running hub
    backup = tmp_path / "nz.backup"
    assert await cli("backup", "--config", toml, "--out", str(backup)) == 0
    assert f"backed up the {federation_kind(config.store_url)} store" in capsys.readouterr().out
    assert os.stat(backup).st_mode & 0o777 == 0o600
    manifest = read_manifest(backup)
    assert manifest["party"] == "NZ" and manifest["trail"]["checkpoint_size"] > 0
    assert manifest["schema"] == migrate.head()
    backed_up_size = manifest["trail"]["size"]

    # life goes on after the backup: a message and a checkpoint the restore will take back
    after_id, _, _ = await send(federation, "LRN-AFTER")
    assert (await nz.hub.audit.checkpoint()) is not None

    # not into a running hub
    assert await cli("restore", "--config", toml, str(backup), "--force") == 2
    refused = capsys.readouterr().err
    assert ("hub-running" in refused and "serve of NZ" in refused) or "server process" in refused
    assert after_id in [m.message_id for m in await nz.hub.store.views.inbound()]

    await federation.stop("NZ")
    size_before, received = await store_state(federation, "NZ")
    assert received == [before_id, after_id] and size_before > backed_up_size
    # not over a store that holds a trail, unless told to
    assert await cli("restore", "--config", toml, str(backup)) == 2
    assert "--force" in capsys.readouterr().err
    assert await store_state(federation, "NZ") == (size_before, received)

    assert await cli("restore", "--config", toml, str(backup), "--force") == 0
    assert "no longer match" in capsys.readouterr().out
    assert await store_state(federation, "NZ") == (backed_up_size, [before_id])

    # the restored hub starts; CN resends the message NZ received before the backup, and gets
    # the receipt of its first delivery: a duplicate, not a new message
    nz = await federation.start("NZ")
    client = as_partner(pki, "CN", nz)
    try:
        again = await client.deliver("NZ", before_envelope, timeout=10)
    finally:
        await client.close()
    assert again.SerializeToString() == before_receipt
    assert pb.SignedReceipt.FromString(before_receipt).ByteSize() > 0
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [before_id]

    # the trail goes on from the restored one, and verifies against its signed checkpoints
    next_id, _, _ = await send(federation, "LRN-NEXT")
    assert await nz.hub.audit.checkpoint() is not None
    export = tmp_path / "export"
    exported = await export_trail(nz.hub.store, export, config.origin)
    assert exported.entries > backed_up_size
    report = verify_folder(export, trail_verifier(config))
    assert report.ok, report.summary()
    assert report.verified_size == exported.entries
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [before_id, next_id]


def federation_kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def read_manifest(path: Path) -> dict:  # type: ignore[type-arg]
    with tarfile.open(path) as archive:
        member = archive.extractfile(MANIFEST)
        assert member is not None
        return json.loads(member.read())  # type: ignore[no-any-return]


def data_offset(path: Path) -> int:
    with tarfile.open(path) as archive:
        members = archive.getmembers()
        assert [m.name for m in members[:1]] == [MANIFEST]
        return members[1].offset_data + members[1].size // 2


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
async def two_backups(tmp_path: Path, pki: Path) -> tuple[Federation, Path, Path]:
    """CN's and NZ's SQLite stores, each with a trail and a signed checkpoint, backed up
    (the hubs stopped again)."""
    federation = Federation(tmp_path / "hubs", pki)
    try:
        for party in ("CN", "NZ"):
            running = await federation.start(party)
            await running.hub.audit.checkpoint()
    finally:
        await federation.stop_all()
    backups = {}
    for party in ("CN", "NZ"):
        backups[party] = tmp_path / f"{party}.backup"
        toml = str(federation.configs[party].path)
        assert await cli("backup", "--config", toml, "--out", str(backups[party])) == 0
    return federation, backups["CN"], backups["NZ"]


async def test_a_backup_of_another_hub_is_refused(
    two_backups: tuple[Federation, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    federation, cn_backup, _ = two_backups
    nz = federation.configs["NZ"]
    untouched = digest(sqlite_path(nz.store_url))
    capsys.readouterr()
    assert await cli("restore", "--config", str(nz.path), str(cn_backup), "--force") == 2
    err = capsys.readouterr().err
    assert "backup-refused" in err and "a backup of hub 'CN'" in err and "hub 'NZ'" in err
    assert digest(sqlite_path(nz.store_url)) == untouched


async def test_a_backup_claiming_another_hub_fails_on_its_checkpoint(
    two_backups: tuple[Federation, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CN's backup with a manifest rewritten to say NZ: its checkpoint is CN's signature."""
    federation, cn_backup, _ = two_backups
    nz = federation.configs["NZ"]
    untouched = digest(sqlite_path(nz.store_url))
    forged = tmp_path / "forged.backup"
    with tarfile.open(cn_backup) as source, tarfile.open(forged, "w") as out:
        head, data = source.getmembers()
        manifest = json.loads(source.extractfile(head).read())  # type: ignore[union-attr]
        manifest |= {"party": "NZ", "origin": "customs-hub/NZ"}
        body = json.dumps(manifest).encode()
        head.size = len(body)
        out.addfile(head, io.BytesIO(body))
        out.addfile(data, source.extractfile(data))
    capsys.readouterr()
    assert await cli("restore", "--config", str(nz.path), str(forged), "--force") == 2
    assert "does not verify with this hub's trail key" in capsys.readouterr().err
    assert digest(sqlite_path(nz.store_url)) == untouched


async def test_a_damaged_backup_is_refused(
    two_backups: tuple[Federation, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    federation, _, nz_backup = two_backups
    nz = federation.configs["NZ"]
    untouched = digest(sqlite_path(nz.store_url))
    data = bytearray(nz_backup.read_bytes())
    at = data_offset(nz_backup)
    data[at] ^= 0x01
    nz_backup.write_bytes(bytes(data))
    capsys.readouterr()
    assert await cli("restore", "--config", str(nz.path), str(nz_backup), "--force") == 2
    err = capsys.readouterr().err
    assert "backup-invalid" in err and "damaged" in err and "SHA-256" in err
    assert digest(sqlite_path(nz.store_url)) == untouched
    # nothing left beside the database (but the lock file the hub and the restore take)
    assert sorted(p.name for p in sqlite_path(nz.store_url).parent.iterdir()) == [
        "hub.db",
        "hub.db.lock",
        "hub.toml",
    ]


async def test_the_backup_file_is_never_written_through_a_link_or_over_a_file(
    two_backups: tuple[Federation, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    federation, _, nz_backup = two_backups
    toml = str(federation.configs["NZ"].path)
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "link.backup"
    link.symlink_to(victim)
    capsys.readouterr()
    for force in ([], ["--force"]):
        assert await cli("backup", "--config", toml, "--out", str(link), *force) == 2
        assert "is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me" and link.is_symlink()
    dangling = tmp_path / "dangling.backup"
    dangling.symlink_to(tmp_path / "nowhere")
    assert await cli("backup", "--config", toml, "--out", str(dangling)) == 2
    assert not (tmp_path / "nowhere").exists()
    before = digest(nz_backup)
    assert await cli("backup", "--config", toml, "--out", str(nz_backup)) == 2
    assert "exists already" in capsys.readouterr().err
    assert digest(nz_backup) == before
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


async def test_a_restore_into_a_new_sqlite_file(
    two_backups: tuple[Federation, Path, Path], tmp_path: Path
) -> None:
    """The backup is a SQLite database of its own, restored into a file that did not exist."""
    federation, _, nz_backup = two_backups
    nz = federation.configs["NZ"]
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    toml = fresh / "hub.toml"
    toml.write_text(
        nz.path.read_text().replace(str(sqlite_path(nz.store_url)), str(fresh / "restored.db"))
    )
    assert await cli("restore", "--config", str(toml), str(nz_backup)) == 0
    restored = fresh / "restored.db"
    assert os.stat(restored).st_mode & 0o777 == 0o600
    expected = read_manifest(nz_backup)["trail"]
    with sqlite3.connect(restored) as conn:
        size = conn.execute("SELECT max(idx) + 1 FROM trail_entry").fetchone()[0]
        assert size == expected["size"]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def fake_tool(folder: Path, name: str, version: str, record: Path | None = None) -> None:
    """A stand-in for pg_dump or pg_restore: answers --version with ``version``; otherwise
    writes its arguments and PG* environment to ``record`` and fails."""
    folder.mkdir(exist_ok=True)
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        f'if [ "$1" = "--version" ]; then echo "{name} (PostgreSQL) {version}"; exit 0; fi\n'
        f'echo "$@" > "{record}"; env | grep ^PG >> "{record}"\n'
        'echo "pg_dump: error: stand-in" >&2; exit 1\n'
    )
    script.chmod(0o755)


async def test_a_missing_or_older_postgresql_tool_is_named(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await _new_pg_database(request, driver="")
    federation = Federation(tmp_path / "hubs", pki, dict.fromkeys(("CN", "NZ", "SG"), url))
    toml = str(federation.configs["NZ"].path)
    assert await cli("db", "upgrade", "--config", toml) == 0
    out = tmp_path / "nz.backup"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert await cli("backup", "--config", toml, "--out", str(out), "--pg-bin", str(empty)) == 2
    assert f"pg_dump not found in {empty}" in capsys.readouterr().err
    old = tmp_path / "old"
    fake_tool(old, "pg_dump", "9.6.24")
    assert await cli("backup", "--config", toml, "--out", str(out), "--pg-bin", str(old)) == 2
    err = capsys.readouterr().err
    assert "PostgreSQL 9, the server" in err and "backup-failed" in err
    assert not out.exists() and not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


async def test_the_postgresql_password_travels_in_the_environment_only(
    request: pytest.FixtureRequest, tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The test server trusts every connection, so a password in the URL is carried, not
    checked: the stand-in pg_dump shows where it went."""
    url = await _new_pg_database(request, driver="")
    secret = "s3cret-PW"
    with_password = url.replace("postgresql://postgres@", f"postgresql://postgres:{secret}@")
    assert secret in with_password
    federation = Federation(
        tmp_path / "hubs", pki, dict.fromkeys(("CN", "NZ", "SG"), with_password)
    )
    toml = str(federation.configs["NZ"].path)
    store = Store(federation.configs["NZ"].store_url)
    try:
        await store.prepare(create=True)
    finally:
        await store.close()
    record = tmp_path / "record"
    tools = tmp_path / "bin"
    fake_tool(tools, "pg_dump", "99.0", record)
    out = tmp_path / "nz.backup"
    assert await cli("backup", "--config", toml, "--out", str(out), "--pg-bin", str(tools)) == 2
    err = capsys.readouterr().err
    assert "pg_dump on postgres@127.0.0.1" in err and "stand-in" in err
    assert secret not in err
    arguments, *environment = record.read_text().splitlines()
    assert "--format=custom" in arguments and "--snapshot=" in arguments
    assert secret not in arguments
    assert f"PGPASSWORD={secret}" in environment
    assert f"PGDATABASE={url.rsplit('/', 1)[1]}" in environment
