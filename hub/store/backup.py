"""Copies of a hub's database for backup and restore (docs/backup.md): SQLite through its
online backup API, PostgreSQL through pg_dump and pg_restore, each copy checked and read back
for the state of the trail it holds. The file they travel in is hub/store/backupfile.py's;
whether a backup may be restored into a hub is hub/cli/backup.py's decision.

What it must never do: put a PostgreSQL password on a command line or in a message; write
through a link; make an empty database where one was to be read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from hub.store.backupfile import BackupError, new_private_file, refuse_link

# What pg_dump or pg_restore wrote to stderr that an error message repeats (its last lines).
TOOL_ERROR_CHARS = 2000
# libpq settings a store URL may carry, and the environment variable each is handed over in.
PG_QUERY_ENV = {
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "sslcrl": "PGSSLCRL",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "application_name": "PGAPPNAME",
}
_TRAIL_SIZE = "SELECT coalesce(max(idx) + 1, 0) FROM trail_entry"
_SQLITE_HAS_TRAIL = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trail_entry'"
_PG_HAS_TRAIL = "SELECT to_regclass('trail_entry')"
_LATEST_CHECKPOINT = "SELECT size, root, note FROM trail_checkpoint ORDER BY size DESC LIMIT 1"


@dataclass(frozen=True)
class TrailState:
    """What a copy of the store holds of the trail: its size and its latest signed checkpoint
    (size 0 and empty bytes when none was signed yet)."""

    size: int
    checkpoint_size: int = 0
    checkpoint_root: bytes = b""
    checkpoint_note: bytes = b""

    def as_json(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "checkpoint_size": self.checkpoint_size,
            "checkpoint_root": self.checkpoint_root.hex(),
            "checkpoint_note": self.checkpoint_note.decode("utf-8"),
        }

    @classmethod
    def of_json(cls, value: object) -> TrailState:
        unreadable = BackupError("the manifest's trail is not readable", reason="backup-invalid")
        if not isinstance(value, dict):
            raise unreadable
        try:
            return cls(
                int(value["size"]),
                int(value["checkpoint_size"]),
                bytes.fromhex(value["checkpoint_root"]),
                str(value["checkpoint_note"]).encode("utf-8"),
            )
        except (KeyError, TypeError, ValueError):
            raise unreadable from None


def _state(size: Any, latest: Any) -> TrailState:
    if latest is None:
        return TrailState(int(size))
    return TrailState(int(size), int(latest[0]), bytes(latest[1]), bytes(latest[2]))


# --- SQLite ---------------------------------------------------------------------------------


def sqlite_path(url: str) -> Path:
    """The database file of a SQLite store URL as hub/config.py makes it."""
    return Path(make_url(url).database or "")


def _connect(path: Path, mode: str = "ro") -> sqlite3.Connection:
    """A connection to the existing database ``path`` (never a new, empty one): ``ro`` for a
    copy; ``rw`` for the hub's own, whose last connection then leaves no -wal or -shm file
    behind (a read-only one cannot remove them)."""
    uri = f"file:{path.as_posix().replace('?', '%3f').replace('#', '%23')}?mode={mode}"
    conn = sqlite3.connect(uri, uri=True)
    conn.execute("PRAGMA busy_timeout=10000")
    return conn


def _checked_copy(conn: sqlite3.Connection, where: str) -> TrailState:
    problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(
            f"{where}: SQLite's integrity check failed: {'; '.join(problems[:3])}",
            reason="backup-invalid",
        )
    if conn.execute(_SQLITE_HAS_TRAIL).fetchone() is None:
        raise BackupError(f"{where}: holds no hub's store (no trail)", reason="backup-invalid")
    size = conn.execute(_TRAIL_SIZE).fetchone()[0]
    return _state(size, conn.execute(_LATEST_CHECKPOINT).fetchone())


def copy_sqlite(database: Path, copy: Path) -> TrailState:
    """Copy the SQLite database ``database`` into the new file ``copy`` through SQLite's online
    backup API, in one step, so the copy is one consistent snapshot while a hub goes on writing
    (WAL: its writers are not held up); then check the copy and read its trail."""
    if not refuse_link(database):
        raise BackupError(f"{database}: no such database", reason="backup-refused")
    os.close(new_private_file(copy))
    try:
        source = _connect(database, "rw")  # only read; see _connect
        try:
            target = sqlite3.connect(copy)
            try:
                source.backup(target)  # every page at once: one read transaction
                # one file, whatever the source's journal mode: no -wal beside the copy
                target.execute("PRAGMA journal_mode=DELETE")
                return _checked_copy(target, str(database))
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{database}: the SQLite backup failed: {exc}") from None


def check_sqlite(copy: Path) -> TrailState:
    """The integrity of a SQLite copy read out of a backup, and its trail."""
    try:
        conn = _connect(copy)
        try:
            return _checked_copy(conn, "the backup's database")
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the backup's database: {exc}", reason="backup-invalid") from None


def restore_sqlite(copy: Path, database: Path, *, replace: bool) -> TrailState:
    """Write the checked copy ``copy`` into ``database`` through the backup API: a new file
    (mode 0600), or with ``replace`` over the existing one in one SQLite transaction, its
    write-ahead log included (never the file renamed under a log that is not its own)."""
    exists = refuse_link(database)
    if exists and not replace:
        raise BackupError(
            f"{database}: exists already; stop the hub and give --force to replace it",
            reason="backup-refused",
        )
    if not exists:
        os.close(new_private_file(database))
    try:
        return _restore_into(copy, database)
    except BaseException:
        if not exists:  # what this made, and nothing else
            for made in ("", "-journal", "-wal", "-shm"):
                Path(f"{database}{made}").unlink(missing_ok=True)
        raise


def _restore_into(copy: Path, database: Path) -> TrailState:
    try:
        source = _connect(copy)
        try:
            target = sqlite3.connect(database)
            try:
                target.execute("PRAGMA busy_timeout=10000")
                source.backup(target)
                target.execute("PRAGMA journal_mode=WAL")  # as the hub runs it
                return _checked_copy(target, str(database))
            finally:
                target.close()
        finally:
            source.close()
    except sqlite3.Error as exc:
        raise BackupError(f"{database}: the SQLite restore failed: {exc}") from None


# --- PostgreSQL -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTarget:
    """A PostgreSQL store as libpq's tools reach it: everything in environment variables, the
    password too, so nothing secret is on a command line (which other users can read)."""

    url: URL

    @classmethod
    def of(cls, url: str) -> PgTarget:
        return cls(make_url(url))

    @property
    def name(self) -> str:
        """user@host:port/database, for messages: no password."""
        u = self.url
        return f"{u.username or ''}@{u.host or ''}:{u.port or 5432}/{u.database or ''}"

    def environment(self) -> dict[str, str]:
        """The process's environment with the URL's parts over it (what the URL leaves out,
        libpq takes from the operator's own PG* variables, as the hub's driver does)."""
        env = dict(os.environ)
        u = self.url
        pairs = {
            "PGHOST": u.host,
            "PGPORT": str(u.port) if u.port else None,
            "PGUSER": u.username,
            "PGPASSWORD": u.password,
            "PGDATABASE": u.database,
        }
        env.update({k: v for k, v in pairs.items() if v})
        for key, value in u.query.items():
            if key not in PG_QUERY_ENV:
                raise BackupError(
                    f"store.url: {key!r} is not a setting pg_dump can be given "
                    f"(known: {', '.join(sorted(PG_QUERY_ENV))})",
                    reason="backup-refused",
                )
            env[PG_QUERY_ENV[key]] = value if isinstance(value, str) else value[-1]
        return env

    @contextlib.asynccontextmanager
    async def connect(self, **options: Any) -> AsyncIterator[AsyncConnection]:
        engine = create_async_engine(self.url, poolclass=NullPool, **options)
        try:
            async with engine.connect() as conn:
                yield conn
        finally:
            await engine.dispose()


_VERSION = re.compile(r"\(PostgreSQL\) (\d+)(?:\.(\d+))?")


def find_tool(name: str, server_major: int, bin_dir: Path | None) -> tuple[Path, str]:
    """``pg_dump`` or ``pg_restore`` for a server of ``server_major``, and its version line:
    from ``bin_dir`` if given, else the server's own version's folder on Debian and Ubuntu
    (/usr/lib/postgresql/<major>/bin), else the PATH. Refused when missing or older than the
    server (pg_dump cannot read a newer server; pg_restore a newer archive)."""
    places = [bin_dir / name] if bin_dir else []
    if not bin_dir:
        places.append(Path(f"/usr/lib/postgresql/{server_major}/bin/{name}"))
        found = shutil.which(name)
        if found:
            places.append(Path(found))
    tool = next((p for p in places if p.is_file() and os.access(p, os.X_OK)), None)
    if tool is None:
        where = str(bin_dir) if bin_dir else f"/usr/lib/postgresql/{server_major}/bin or PATH"
        raise BackupError(
            f"{name} not found in {where}; install the PostgreSQL {server_major} client "
            f"(Debian: apt-get install postgresql-client-{server_major}) or give --pg-bin DIR"
        )
    done = subprocess.run(
        [str(tool), "--version"], capture_output=True, text=True, timeout=30, check=False
    )
    match = _VERSION.search(done.stdout)
    if match is None:
        raise BackupError(f"{tool} --version: not a PostgreSQL tool's answer")
    if int(match.group(1)) < server_major:
        raise BackupError(
            f"{tool} is PostgreSQL {match.group(1)}, the server {server_major}: "
            f"use the client of version {server_major} or later (--pg-bin DIR)"
        )
    return tool, done.stdout.strip()


async def _run_tool(tool: Path, args: list[str], target: PgTarget, stdout: int | None) -> None:
    process = await asyncio.create_subprocess_exec(
        str(tool),
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=stdout if stdout is not None else asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=target.environment(),
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        text = errors.decode("utf-8", "replace").strip()[-TOOL_ERROR_CHARS:]
        raise BackupError(
            f"{tool.name} on {target.name} failed (exit {process.returncode}): {text}"
        )


async def _server_major(conn: AsyncConnection) -> int:
    number = (await conn.exec_driver_sql("SHOW server_version_num")).scalar_one()
    return int(number) // 10000


async def _trail_state(conn: AsyncConnection, where: str) -> TrailState:
    if (await conn.exec_driver_sql(_PG_HAS_TRAIL)).scalar_one() is None:
        raise BackupError(f"{where}: holds no hub's store (no trail)", reason="backup-invalid")
    size = (await conn.exec_driver_sql(_TRAIL_SIZE)).scalar_one()
    return _state(size, (await conn.exec_driver_sql(_LATEST_CHECKPOINT)).first())


async def dump_postgres(url: str, copy: Path, bin_dir: Path | None) -> tuple[TrailState, str]:
    """pg_dump (custom format) of the store into the new file ``copy``, and the trail of the
    same snapshot: a read-only transaction exports its snapshot, reads the trail, and stays
    open while pg_dump dumps exactly that snapshot (``--snapshot``). Also the tool's version."""
    target = PgTarget.of(url)
    try:
        # one REPEATABLE READ transaction from its first statement to the COMMIT
        async with target.connect(isolation_level="REPEATABLE READ") as conn:
            tool, version = find_tool("pg_dump", await _server_major(conn), bin_dir)
            snapshot = (await conn.exec_driver_sql("SELECT pg_export_snapshot()")).scalar_one()
            state = await _trail_state(conn, target.name)
            descriptor = new_private_file(copy)
            try:
                args = ["--format=custom", f"--snapshot={snapshot}", "--no-password"]
                await _run_tool(tool, args, target, descriptor)
            finally:
                os.close(descriptor)
            await conn.commit()
    except (OSError, SQLAlchemyError) as exc:
        raise BackupError(f"{target.name}: {type(exc).__name__}: {_first_line(exc)}") from None
    return state, version


async def restore_postgres(
    url: str, dump: Path, bin_dir: Path | None, *, replace: bool
) -> TrailState:
    """pg_restore of ``dump`` into the store, in one transaction (all or nothing), and the
    trail the store then holds. A store that holds a trail already is refused unless
    ``replace``: then what the backup holds is dropped and made again (``--clean``); tables the
    backup does not hold stay."""
    target = PgTarget.of(url)
    try:
        async with target.connect() as conn:
            tool, _ = find_tool("pg_restore", await _server_major(conn), bin_dir)
            if not replace and await _holds_trail(conn):
                raise BackupError(
                    f"{target.name}: holds a hub's trail already; stop the hub and give "
                    "--force to replace it, or restore into an empty database",
                    reason="backup-refused",
                )
        args = ["--clean", "--if-exists", "--no-owner", "--no-acl", "--single-transaction"]
        args += ["--exit-on-error", "--no-password", f"--dbname={_conninfo(target)}", str(dump)]
        await _run_tool(tool, args, target, None)
        async with target.connect() as conn:
            return await _trail_state(conn, target.name)
    except (OSError, SQLAlchemyError) as exc:
        raise BackupError(f"{target.name}: {type(exc).__name__}: {_first_line(exc)}") from None


async def _holds_trail(conn: AsyncConnection) -> bool:
    exists = (await conn.exec_driver_sql(_PG_HAS_TRAIL)).scalar_one()
    if exists is None:
        return False
    return (await conn.exec_driver_sql("SELECT 1 FROM trail_entry LIMIT 1")).first() is not None


def _conninfo(target: PgTarget) -> str:
    """``dbname='...'`` in libpq's quoting; host, user and password travel in the environment."""
    name = (target.url.database or "").replace("\\", "\\\\").replace("'", "\\'")
    return f"dbname='{name}'"


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:300]
