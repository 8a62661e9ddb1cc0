"""Offline verification: a trail exported from the store verifies with nothing but the
export and the verifier key, and every way of altering the stored rows afterwards is caught."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.cli.main import main
from hub.cli.trailfiles import ExportFolderError, export_trail, read_key, verify_folder
from hub.config import load_config, render_config
from hub.store.db import Store
from hub.store.rawsql import Tx
from hub.trail import checkpoint, merkle
from hub.trail import events as trail
from hub.trail import verify as trailcheck

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
ORIGIN = "customs-hub/CN"
CHECKPOINT_SIZES = (8, 20, 37, 50)  # entry 13 lies between the first two
TARGET = 13


def event(i: int) -> trail.Event:
    kind = ("received", "queued", "delivered")[i % 3]
    return trail.Event(kind, AT, message_id=f"m{i:04d}", sender="NZ", keys={"aeo": [f"A{i}"]})


FORGED = trail.encode(trail.Event("received", AT, message_id="m-forged", sender="NZ"))


@dataclass
class Trail:
    store: Store
    key: checkpoint.NoteKey  # the verifier's key: no private part

    def sql(self, statement: str, *params: object) -> Callable[[Tx], None]:
        """One statement with ``?`` placeholders, in the store's own dialect."""
        if not self.store.db.is_sqlite:
            for n in range(1, len(params) + 1):
                statement = statement.replace("?", f"${n}", 1)

        def run(tx: Tx) -> None:
            tx.conn.exec_driver_sql(statement, tuple(params))

        return run


@pytest.fixture
async def signed_trail(store_url: str) -> Trail:
    store = Store(store_url)
    private = ed25519.Ed25519PrivateKey.generate()
    key = checkpoint.NoteKey("customs-hub-CN", private.public_key(), private)

    def sign(size: int, root: bytes) -> bytes:
        return checkpoint.sign(checkpoint.Checkpoint(ORIGIN, size, root), key)

    await store.prepare(create=True)
    size = 0
    for end in CHECKPOINT_SIZES:
        await store.trail.append([event(i) for i in range(size, end)])
        assert await store.trail.sign_checkpoint(sign) is not None
        size = end
    return Trail(store, checkpoint.parse_verifier(key.verifier()))


async def exported(t: Trail, folder: Path) -> trailcheck.Report:
    try:
        await export_trail(t.store, folder, ORIGIN)
    finally:
        await t.store.close()
    return verify_folder(folder, t.key)


async def test_an_untouched_trail_verifies(signed_trail: Trail, tmp_path: Path) -> None:
    report = await exported(signed_trail, tmp_path / "export")
    assert report.ok, report.summary()
    assert (report.entries, report.verified_size, report.checkpoints) == (50, 50, 4)
    assert report.kinds == {"received": 17, "queued": 17, "delivered": 16}
    assert report.summary().startswith("OK: 50 entries")
    manifest = json.loads((tmp_path / "export" / "MANIFEST.json").read_text())
    assert manifest["entries"] == 50 and manifest["checkpoints"] == list(CHECKPOINT_SIZES)


def swap(t: Trail, a: int, b: int) -> list[Callable[[Tx], None]]:
    park = "UPDATE trail_entry SET idx = ? WHERE idx = ?"
    return [t.sql(park, -1, a), t.sql(park, a, b), t.sql(park, b, -1)]


def shift(t: Trail, start: int, by: int, size: int) -> list[Callable[[Tx], None]]:
    """Renumber entries from ``start`` on by ``by``, one row at a time so no two rows ever
    hold one index."""
    order = range(size - 1, start - 1, -1) if by > 0 else range(start, size)
    return [t.sql("UPDATE trail_entry SET idx = ? WHERE idx = ?", i + by, i) for i in order]


def insert(t: Trail, index: int, leaf: trail.Leaf) -> Callable[[Tx], None]:
    return t.sql(
        "INSERT INTO trail_entry (idx, kind, at, message_id, correlation_id, sender, "
        "recipient, body_type, leaf, leaf_hash) VALUES (?, ?, ?, ?, '', '', '', '', ?, ?)",
        index,
        leaf.event.kind,
        "2026-12-02 09:30:00.000000" if t.store.db.is_sqlite else AT,
        leaf.event.message_id,
        leaf.data,
        leaf.hash,
    )


# (name, the rows' alteration, what verification must report)
# expected: an int is the exact first bad index; a tuple is the range that must be named
TAMPERING: list[tuple[str, Callable[[Trail], list[Callable[[Tx], None]]], int | tuple[int, int]]]
TAMPERING = [
    (
        "edit a leaf",
        lambda t: [t.sql("UPDATE trail_entry SET leaf = ? WHERE idx = ?", FORGED.data, TARGET)],
        TARGET,
    ),
    (
        "edit a leaf and its stored hash",
        lambda t: [
            t.sql(
                "UPDATE trail_entry SET leaf = ?, leaf_hash = ? WHERE idx = ?",
                FORGED.data,
                FORGED.hash,
                TARGET,
            )
        ],
        (8, 20),
    ),
    (
        "delete an entry",
        lambda t: [t.sql("DELETE FROM trail_entry WHERE idx = ?", TARGET)],
        TARGET,
    ),
    (
        "delete an entry and renumber the rest",
        lambda t: [
            t.sql("DELETE FROM trail_entry WHERE idx = ?", TARGET),
            *shift(t, TARGET + 1, -1, 50),
        ],
        (8, 20),
    ),
    ("reorder two entries", lambda t: swap(t, TARGET, TARGET + 1), (8, 20)),
    (
        "insert an entry",
        lambda t: [*shift(t, TARGET, 1, 50), insert(t, TARGET, FORGED)],
        (8, 20),
    ),
    (
        "delete the newest entries",
        lambda t: [t.sql("DELETE FROM trail_entry WHERE idx >= ?", 45)],
        45,
    ),
]


async def test_entries_after_the_latest_checkpoint_are_reported_as_not_covered(
    signed_trail: Trail, tmp_path: Path
) -> None:
    # an entry appended after the latest checkpoint is covered by no signature yet: the
    # report says so rather than vouching for it
    await signed_trail.store.trail.append([event(50), event(51)])
    report = await exported(signed_trail, tmp_path / "export")
    assert report.ok
    assert (report.entries, report.verified_size, report.uncovered) == (52, 50, 2)
    assert "2 later entries are not covered" in report.summary()


async def test_the_export_files_themselves_are_checked(signed_trail: Trail, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    assert (await exported(signed_trail, folder)).ok
    entries = folder / "entries.bin"
    original = entries.read_bytes()

    # a flipped byte in a leaf
    position = original.index(b"m0030")
    entries.write_bytes(original[:position] + b"X" + original[position + 1 :])
    report = verify_folder(folder, signed_trail.key)
    assert report.first_bad == 30, report.summary()

    # a copy cut short in the middle of a record
    entries.write_bytes(original[:-7])
    report = verify_folder(folder, signed_trail.key)
    assert not report.ok and "cut short" in report.problem

    # a copy cut short at a record boundary after the latest checkpoint: the manifest tells
    entries.write_bytes(original)
    assert verify_folder(folder, signed_trail.key).ok

    # another key: nothing verifies
    other = ed25519.Ed25519PrivateKey.generate().public_key()
    report = verify_folder(folder, checkpoint.NoteKey("customs-hub-CN", other))
    assert not report.ok and "not signed by customs-hub-CN" in report.problem

    (folder / "MANIFEST.json").unlink()
    with pytest.raises(ExportFolderError, match="not a complete export"):
        verify_folder(folder, signed_trail.key)


def test_verifier_keys_are_read_from_a_file_or_given_inline(tmp_path: Path) -> None:
    private = ed25519.Ed25519PrivateKey.generate()
    key = checkpoint.NoteKey("customs-hub-CN", private.public_key())
    (tmp_path / "trail.vkey").write_text(key.verifier() + "\n")
    assert read_key(str(tmp_path / "trail.vkey")).hash == key.hash
    assert read_key(key.verifier()).hash == key.hash
    with pytest.raises(ExportFolderError, match="verifier key"):
        read_key("customs-hub-CN+00000000+AAAA")


async def test_cli_exports_and_verifies(
    tmp_path: Path, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = tmp_path / "hub.toml"
    config_path.write_text(
        render_config(
            party="CN",
            listen="127.0.0.1:1",
            domestic_listen="127.0.0.1:2",
            pki=pki,
            partners={"NZ": "127.0.0.1:3"},
        )
    )
    config = load_config(config_path)
    store = Store(config.store_url)
    signing = ed25519.Ed25519PrivateKey.generate()
    private = checkpoint.NoteKey("customs-hub-CN", signing.public_key(), signing)
    try:
        await store.prepare(create=True)
        await store.trail.append([event(i) for i in range(5)])
        await store.trail.sign_checkpoint(
            lambda size, root: checkpoint.sign(
                checkpoint.Checkpoint(config.origin, size, root), private
            )
        )
    finally:
        await store.close()
    out = tmp_path / "export"
    # the CLI runs its own event loop: run it off this test's loop
    export = ["trail", "export", "--config", str(config_path), "-o", str(out)]
    assert await asyncio.to_thread(main, export) == 0
    assert "exported 5 entries and 1 checkpoints" in capsys.readouterr().out
    vkey = tmp_path / "trail.vkey"
    vkey.write_text(private.verifier())
    assert main(["trail", "verify", str(out), "--key", str(vkey)]) == 0
    assert capsys.readouterr().out.startswith("OK: 5 entries")
    (out / "entries.bin").write_bytes(
        (out / "entries.bin").read_bytes().replace(b"m0002", b"m0009")
    )
    assert main(["trail", "verify", str(out), "--key", str(vkey), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and result["first_bad"] == 2


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=2048), cut=st.integers(min_value=0, max_value=2048))
def test_any_bytes_as_entries_give_a_report_never_a_crash(data: bytes, cut: int) -> None:
    """Hostile or damaged entries.bin: verification reports BAD, it never raises."""
    private = ed25519.Ed25519PrivateKey.generate()
    key = checkpoint.NoteKey("customs-hub-CN", private.public_key(), private)
    good = b"".join(
        trailcheck.encode_record(i, trail.encode(event(i)).data, trail.encode(event(i)).hash)
        for i in range(3)
    )
    root = merkle.root([trail.encode(event(i)).hash for i in range(3)])
    note = checkpoint.sign(checkpoint.Checkpoint(ORIGIN, 3, root), key)
    for blob in (data, good[:cut] + data, good + data):
        report = trailcheck.verify(
            trailcheck.read_records(io.BytesIO(blob)), [("c", note)], key, None
        )
        if report.ok:  # only if the leaves are the signed ones: stored hashes are not trusted
            parsed = [(r.index, r.leaf) for r in trailcheck.read_records(io.BytesIO(blob))]
            assert parsed == [(i, trail.encode(event(i)).data) for i in range(3)]
        assert report.summary().startswith(("OK", "BAD"))
