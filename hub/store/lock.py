"""One hub process per store: an exclusive lock held for as long as the hub serves.

On SQLite, ``flock`` on a file beside the database (``hub.db.lock``), which holds who took it;
the kernel lets go when the process ends, however it ends. On PostgreSQL, a session advisory
lock on the database, on a connection of its own; the server lets go when that connection
ends, and the hub's health probe takes it again (or stops the hub, if another took it). A
second ``serve`` (or ``db upgrade`` or ``restore`` under a running hub) is refused with
``InstanceLocked``, naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from hub.core.errors import InstanceLocked, StoreError
from hub.core.times import rfc3339
from hub.store.engine import Database
from hub.store.schema import utcnow

# pg_locks shows a bigint advisory key as two 32-bit halves: classid (high), objid (low)
_HOLDER = text(
    "SELECT a.pid, a.client_addr, a.application_name, a.backend_start "
    "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :hi AND l.objid = :lo "
    "AND l.objsubid = 1 "
    # advisory locks are the database's own: the same key in another database is another lock
    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


# what a holder writes of itself (the lock file's text; the lock connection's application_name
# on PostgreSQL), and how ``holder`` reads back the process that holds it
_WHO = re.compile(r"(?P<purpose>[a-z ]+) of (?P<party>\S+), pid (?P<pid>\d+) on (?P<host>[^,\s]+)")


@dataclass(frozen=True)
class Holder:
    """Who holds a hub's lock: what for, its process id and host."""

    purpose: str
    pid: int
    host: str


def short_host() -> str:
    """This host's name without its domain: what a holder writes of itself (PostgreSQL keeps
    63 characters of application_name, which a full name can outgrow)."""
    return socket.gethostname().split(".", 1)[0][:32]


def _holder(text: str) -> Holder | None:
    found = _WHO.search(text)
    if found is None:
        return None
    return Holder(found["purpose"], int(found["pid"]), found["host"])


log = logging.getLogger("customs_hub.service")


# The advisory lock's 64-bit key. PostgreSQL's advisory locks belong to one database, and a
# database holds one hub's tables (they name no party), so one key serves every hub: what it
# locks is the database, whichever party's hub takes it.
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"customs-hub:store").digest()[:8], "big", signed=True)


class LockLost(StoreError):
    """Another process took this hub's lock while it ran (PostgreSQL only: after the
    connection that held it was lost): the hub must stop."""


def _halves(key: int) -> dict[str, int]:
    """An advisory key as pg_locks shows it: its high and low 32 bits, unsigned."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    return {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}


class InstanceLock:
    """The lock of one hub's store; ``acquire`` once, ``release`` at the end."""

    def __init__(self, db: Database, party: str) -> None:
        self.db = db
        self.party = party
        self._fd: int | None = None
        self._conn: AsyncConnection | None = None
        self._purpose: str | None = None  # set while held

    async def acquire(self, purpose: str = "serve") -> None:
        path = self.db.sqlite_file
        if path is not None:
            # beside the file itself, however it is reached (a link, another path to it)
            self._lock_file(Path(f"{path.resolve()}.lock"), purpose)
        elif not self.db.is_sqlite:
            await self._lock_postgres(purpose)
        self._purpose = purpose

    def _lock_file(self, path: Path, purpose: str) -> None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the hub's lock file: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 512, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            raise InstanceLocked(
                f"another customs-hub holds {path} ({holder}): one process at a time serves "
                "this store; stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{self._who(purpose)}, since {rfc3339(utcnow())}\n".encode(), 0)
        self._fd = fd

    def _who(self, purpose: str) -> str:
        return f"{purpose} of {self.party}, pid {os.getpid()} on {short_host()}"

    async def holder(self) -> Holder | None:
        """The process holding this hub's lock now, if one does (and says who it is)."""
        path = self.db.sqlite_file
        if path is not None:
            return self._file_holder(Path(f"{path.resolve()}.lock"))
        if self.db.is_sqlite:
            return None

        async def read() -> str | None:
            async with self.db.engine.connect() as conn:
                row = (await conn.execute(_HOLDER, _halves(ADVISORY_KEY))).first()
            return None if row is None else str(row[2] or "")

        text = await self.db.run(read)
        return None if text is None else _holder(text)

    @staticmethod
    def _file_holder(path: Path) -> Holder | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the hub's lock file: {exc.strerror}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:  # held: by whom, the file says
                return _holder(os.pread(fd, 512, 0).decode("utf-8", "replace"))
            return None
        finally:
            os.close(fd)

    async def _lock_postgres(self, purpose: str) -> None:
        key = ADVISORY_KEY

        who = self._who(purpose)[:63]  # application_name's length in PostgreSQL

        async def take() -> bool:
            conn = await self.db.connect_alone()
            try:
                got = await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": key})
                if got:  # who holds it, as pg_stat_activity shows the connection
                    await conn.execute(
                        text("SELECT set_config('application_name', :who, false)"), {"who": who}
                    )
                await conn.commit()
            except BaseException:
                await conn.close()
                raise
            if got:
                self._conn = conn
                return True
            await conn.close()
            return False

        if await self.db.run(take):
            return
        holder = await self.db.run(lambda: self._postgres_holder(key))
        raise InstanceLocked(
            f"another customs-hub holds the lock of this PostgreSQL database ({holder}): one "
            "process at a time serves it; stop it first"
        )

    async def _postgres_holder(self, key: int) -> str:
        async with self.db.engine.connect() as conn:
            row = (await conn.execute(_HOLDER, _halves(key))).first()
        if row is None:
            return "its holder has just let go; try again"
        pid, addr, app, since = row
        where = f" from {addr}" if addr else ""
        name = f" ({app})" if app else ""
        return f"server process {pid}{name}{where}, connected since {rfc3339(since)}"

    async def keep(self) -> None:
        """On PostgreSQL, make sure the lock is still held: a connection the server dropped
        (a restart, a network cut) took the lock with it, so it is taken again on a new one.
        A StoreError if it cannot be, above all when another process took it meanwhile (the
        hub then reports itself not serving). Nothing to do on SQLite: a flock stays."""
        if self._purpose is None or self.db.is_sqlite:
            return
        conn = self._conn
        if conn is not None:
            try:
                await conn.exec_driver_sql("SELECT 1")
                await conn.rollback()
                return
            except self.db.errors:
                self._conn = None
                with contextlib.suppress(*self.db.errors):
                    await conn.invalidate()
            log.warning(
                "the connection holding hub %s's lock was lost; taking it again", self.party
            )
        try:
            await self._lock_postgres(self._purpose)
        except InstanceLocked as exc:
            log.critical("hub %s lost its lock to another process: %s", self.party, exc)
            raise LockLost(f"this hub lost its lock: {exc}") from None

    async def release(self) -> None:
        self._purpose = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # the lock goes with the descriptor; the file stays for the next
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(*self.db.errors):
                await conn.execute(text("SELECT pg_advisory_unlock_all()"))
            with contextlib.suppress(*self.db.errors):
                await conn.close()
