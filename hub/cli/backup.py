"""``customs-hub backup`` and ``customs-hub restore``: a hub's store into one file while the hub
runs, and back into a stopped hub's store (docs/backup.md).

A backup holds the store: messages both ways, the outbox, receipts, the duplicate-detection
memory, the trail and its signed checkpoints. It holds no key or certificate. Restore takes a
backup only for the hub it came from (its party, origin and store kind, and its latest
checkpoint signed by this hub's trail key), only whole (the data's SHA-256), and never into a
running hub. What it must never do: write into the store before every check passed.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from hub import __version__
from hub.app import keys
from hub.config import HubConfig, load_config
from hub.core.times import rfc3339
from hub.store import backup as copies
from hub.store import backupfile
from hub.store.backup import TrailState
from hub.store.backupfile import FORMAT, PG_DATA, SQLITE_DATA, BackupError
from hub.store.db import Store
from hub.store.lock import InstanceLock
from hub.store.schema import utcnow
from hub.trail import checkpoint

PG_BIN = "folder holding pg_dump and pg_restore (default: the server's version's, then PATH)"


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = sub.add_parser(
        "backup",
        help="copy this hub's store into one file, while the hub runs (docs/backup.md)",
    )
    backup.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    backup.add_argument(
        "--out", type=Path, required=True, help="the backup file to write (not if it exists)"
    )
    backup.add_argument(
        "--force", action="store_true", help="replace an existing --out file (never a link)"
    )
    backup.add_argument("--pg-bin", type=Path, help=PG_BIN)
    restore = sub.add_parser(
        "restore", help="put a backup back into this hub's store; stop the hub first"
    )
    restore.add_argument("--config", type=Path, required=True, help="the hub's hub.toml")
    restore.add_argument("file", type=Path, help="a file written by `customs-hub backup`")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace what the store holds now (default: only into a new SQLite file or an "
        "empty database)",
    )
    restore.add_argument("--pg-bin", type=Path, help=PG_BIN)


def run(args: argparse.Namespace) -> int:
    if args.command == "backup":
        return make_backup(args.config, args.out, args.force, args.pg_bin)
    return restore(args.config, args.file, args.force, args.pg_bin)


def _kind(config: HubConfig) -> str:
    return "sqlite" if config.store_url.startswith("sqlite") else "postgresql"


def make_backup(config_path: Path, out: Path, force: bool, pg_bin: Path | None) -> int:
    config = load_config(config_path)
    out = out.absolute()
    kind = _kind(config)
    name = SQLITE_DATA if kind == "sqlite" else PG_DATA
    revision = asyncio.run(_schema_revision(config))
    with backupfile.scratch(out.parent, out.name + ".data") as copy:
        if kind == "sqlite":
            state = copies.copy_sqlite(copies.sqlite_path(config.store_url), copy)
            tool = "sqlite3 online backup"
        else:
            state, tool = asyncio.run(copies.dump_postgres(config.store_url, copy, pg_bin))
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "party": config.party,
            "origin": config.origin,
            "store": kind,
            "created_at": rfc3339(utcnow()),
            "hub_version": __version__,
            "schema": revision,  # a store restored from an older one needs `db upgrade`
            "tool": tool,
            "trail": state.as_json(),
            "data": {
                "name": name,
                "bytes": copy.stat().st_size,
                "sha256": backupfile.sha256_of(copy),
            },
        }
        backupfile.write_archive(out, manifest, copy, replace=force)
    print(
        f"{config.party}: backed up the {kind} store to {out}: trail of {state.size} entries, "
        f"latest checkpoint at {state.checkpoint_size}; sha256 {manifest['data']['sha256']}"
    )
    return 0


def _check_manifest(config: HubConfig, manifest: dict[str, Any], path: Path) -> TrailState:
    """Steps 3 and 4: the backup is this hub's, of this kind of store, and its latest
    checkpoint is one this hub signed, of the trail the manifest names."""
    if manifest.get("party") != config.party or manifest.get("origin") != config.origin:
        raise BackupError(
            f"{path}: a backup of hub {manifest.get('party')!r} ({manifest.get('origin')!r}); "
            f"this config is hub {config.party!r} ({config.origin!r})",
            reason="backup-refused",
        )
    if manifest.get("store") != _kind(config):
        raise BackupError(
            f"{path}: a backup of a {manifest.get('store')} store; this hub's store is "
            f"{_kind(config)} (move the data across with a restore into the same kind, then "
            "export and import)",
            reason="backup-refused",
        )
    state = TrailState.of_json(manifest.get("trail"))
    if state.checkpoint_note:
        # trail.key, or trail.previous_key: a backup made before a rotation of the trail key
        # is restored with the old key named, and the hub hands over again at its start
        verifiers = keys.trail_verifiers(config)
        opened = [k for k in verifiers if checkpoint.signed_by(state.checkpoint_note, k)]
        if not opened:
            try:
                by = ", ".join(checkpoint.signers(state.checkpoint_note)) or "no key"
            except checkpoint.CheckpointError as exc:
                by = f"nobody ({exc})"
            raise BackupError(
                f"{path}: its latest checkpoint does not verify with this hub's trail key "
                f"(nor trail.previous_key): it is signed by {by}; a backup made before a "
                "rotation of the trail key needs the key of then as trail.previous_key",
                reason="backup-refused",
            )
        signed = checkpoint.open_note(state.checkpoint_note, opened[0])
        if (signed.origin, signed.size, signed.root) != (
            config.origin,
            state.checkpoint_size,
            state.checkpoint_root,
        ) or signed.size > state.size:
            raise BackupError(
                f"{path}: the manifest's trail is not the one its checkpoint signs",
                reason="backup-invalid",
            )
    return state


def _same(found: TrailState, expected: TrailState, where: str) -> None:
    if found != expected:
        raise BackupError(
            f"{where}: holds a trail of {found.size} entries (checkpoint at "
            f"{found.checkpoint_size}); the manifest says {expected.size} "
            f"(checkpoint at {expected.checkpoint_size})",
            reason="backup-invalid",
        )


def restore(config_path: Path, path: Path, force: bool, pg_bin: Path | None) -> int:
    """The steps of docs/backup.md's restore, in order; the store is written at step 6 only."""
    config = load_config(config_path)
    manifest, found = asyncio.run(_restore_locked(config, path, force, pg_bin))
    print(
        f"{config.party}: restored the store from {path} (made {manifest.get('created_at')}): "
        f"trail of {found.size} entries, latest checkpoint at {found.checkpoint_size}.\n"
        "Everything the hub did after that backup is gone from it: messages received since "
        "then are not in it, and checkpoints it signed since then (which partners and auditors "
        "may hold) no longer match its trail. See docs/backup.md."
    )
    return 0


async def _restore_locked(
    config: HubConfig, path: Path, force: bool, pg_bin: Path | None
) -> tuple[dict[str, Any], TrailState]:
    """Steps 1 to 7 with the hub's one-instance lock held throughout (hub/store/lock.py): no
    hub runs on the store, and none can start while it is written."""
    store = Store(config.store_url)  # for its lock only: nothing is read through it
    lock = InstanceLock(store.db, config.party)
    try:
        # 1. No hub runs on this store (a running one holds the lock: hub-running).
        await lock.acquire("restore")
        sqlite = _kind(config) == "sqlite"
        database = copies.sqlite_path(config.store_url) if sqlite else None
        with tempfile.TemporaryDirectory(prefix="customs-hub-restore-") as work:
            folder = database.parent if database else Path(work)
            with backupfile.scratch(folder, "restore") as copy:
                # 2. The archive is whole: a manifest and its data, whose size and SHA-256
                # match.
                manifest = backupfile.read_archive(path, copy)
                # 3. and 4. It is this hub's backup, and its checkpoint this hub's signature.
                expected = _check_manifest(config, manifest, path)
                if database is not None:
                    # 5. SQLite's own integrity check passes, and the copy holds that trail.
                    _same(copies.check_sqlite(copy), expected, f"{path}: its database")
                    # 6. Into the store; 7. which then holds the backup's trail.
                    found = copies.restore_sqlite(copy, database, replace=force)
                else:
                    found = await copies.restore_postgres(
                        config.store_url, copy, pg_bin, replace=force
                    )
                _same(found, expected, "the restored store")
        return manifest, found
    finally:
        await lock.release()
        await store.close()


async def _schema_revision(config: HubConfig) -> str | None:
    """The store's schema revision (hub/store/migrate.py), for the manifest."""
    store = await Store.existing(
        config.store_url, upgrade_hint=f"customs-hub db upgrade --config {config.path}"
    )
    try:
        return (await store.db.schema_state()).found
    finally:
        await store.close()
