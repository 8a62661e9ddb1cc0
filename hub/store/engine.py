"""The database under the store: engines, SQLite's writer thread and write lock, transactions
that end as a ``StoreError`` when the database fails, and copying SQLite's write-ahead log.

SQLite (WAL) is the embedded default; PostgreSQL through asyncpg runs the same code. The
statements every message takes are plain SQL on the transaction's driver cursor
(hub/store/rawsql.py), each written once, in the part of the store that runs it (``OutboxSql``,
``InboundSql``, ``TrailSql``; docs/adr/0005).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sqlite3
import ssl
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from sqlalchemy import Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.config import StoreSettings, store_settings
from hub.core.errors import ConfigError, SchemaError, StoreDataError, StoreError
from hub.store import migrate
from hub.store.rawsql import Tx
from hub.store.schema import as_utc

T = TypeVar("T")


# How long a write waits for SQLite's write lock held by another process (an operator's
# command) before it fails with "store-busy": the same as the readers' busy_timeout.
BUSY_SECONDS = 10.0

# SQLite's log is copied into the database as it grows, and started afresh once it holds this
# many pages (8 MiB of 4 KiB pages): large enough that pages written again and again (the
# newest rows, index tails) are copied once per restart, small enough to stay in the cache.
WAL_RESTART_PAGES = 2000


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (CLI, subscribers) run while the hub writes; synchronous=FULL keeps
    # every acknowledged commit durable across power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # No checkpoint inside a commit (one every 1000 pages otherwise, which stalls that commit
    # for the copy and its fsync): the hub copies the log beside its writers (Database.copy_wal)
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.execute("PRAGMA journal_size_limit=67108864")  # what an idle log may keep on disk
    cursor.close()
    # Transactions are begun explicitly (below), not by the driver before the first write.
    dbapi_connection.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    # A writing transaction takes SQLite's write lock when it begins (BEGIN IMMEDIATE): a
    # deferred one that reads first and writes later fails at once with SQLITE_BUSY when
    # another connection committed in between, instead of waiting for its turn.
    immediate = conn.get_execution_options().get("immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
    # The writer connection never sleeps in SQLite's busy handler, which would block the
    # event loop: Database._begin_writing waits for the lock asynchronously instead.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _copy_wal_on_thread(conn: Connection) -> None:
    conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]


def _commit_on_thread(conn: Connection) -> None:
    conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
    if conn.in_transaction():  # Core statements began SQLAlchemy's side of it: end that too
        conn.commit()


UPGRADE = "customs-hub db upgrade --config HUB.toml"


def schema_problem(state: migrate.SchemaState, upgrade_hint: str) -> str:
    """One line: what revision the database is at, which this code needs, and what to do."""
    found, needed = migrate.describe(state.found), migrate.describe(state.head)
    if state.status == "empty":
        return f"the database has no hub tables yet: run `{upgrade_hint}`, or start the hub"
    if state.status == "ahead":
        return (
            f"the database is at schema revision {found}, newer than this customs-hub knows "
            f"(it needs {needed}): run the release that upgraded it, or restore a backup"
        )
    if state.status == "unknown":
        return (
            f"the database's schema revision table holds {state.found!r}, which no release of "
            f"customs-hub writes (it needs {needed}): restore a backup"
        )
    if state.status == "unversioned":
        return (
            "the database has the hub's tables but no schema revision (made before "
            f"migrations); this customs-hub needs {needed}: stop the hub and run "
            f"`{upgrade_hint}`"
        )
    return (
        f"the database is at schema revision {found}; this customs-hub needs {needed}: "
        f"stop the hub and run `{upgrade_hint}`"
    )


def utc_time(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else as_utc(value).astimezone(UTC)


def _foreign_keys(conn: Connection, on: bool) -> None:
    """SQLite's foreign_keys pragma, on the driver's connection outside any transaction."""
    conn.connection.dbapi_connection.cursor().execute(  # type: ignore[union-attr]
        f"PRAGMA foreign_keys={'ON' if on else 'OFF'}"
    )


def _references_hold(conn: Connection) -> None:
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        table, rowid, parent, _ = broken[0]
        raise SchemaError(
            f"the migration left {len(broken)} broken reference(s), e.g. {table} row {rowid} "
            f"to {parent}: nothing was changed"
        )


def sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (``YYYY-MM-DD HH:MM:SS.ffffff``,
    UTC), so Core and ORM reads agree."""
    return utc_time(value).replace(tzinfo=None).isoformat(" ", "microseconds")


# PEP 249's names, and asyncpg's for an integrity violation (its DataError is PEP 249's name)
_DATA_ERRORS = frozenset({"IntegrityError", "DataError", "IntegrityConstraintViolationError"})


def _refuses_data(exc: BaseException) -> bool:
    """Whether a driver's error is about the data written (PEP 249's IntegrityError and
    DataError, by whichever driver or wrapper raised it), not about the store's availability.
    A wrapper's class may say neither (SQLAlchemy's asyncpg adapter raises its own ``Error``
    for what a raw cursor ran), so what it wraps is looked at too: its ``orig`` and its cause."""
    seen: set[int] = set()
    todo: list[object] = [exc]
    while todo:
        error = todo.pop()
        if not isinstance(error, BaseException) or id(error) in seen:
            continue
        seen.add(id(error))
        if {cls.__name__ for cls in type(error).__mro__} & _DATA_ERRORS:
            return True
        todo += [getattr(error, "orig", None), error.__cause__]
    return False


def _unavailable(exc: BaseException) -> str | None:
    """Why the database could not be reached, if that is what ``exc`` (or what it wraps)
    says: refused, unknown host, no such database, authentication, TLS; None otherwise."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        error = todo.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        names = {cls.__name__ for cls in type(error).__mro__}
        if isinstance(error, ConnectionRefusedError) or "ConnectionRefusedError" in names:
            return "connection refused"
        if isinstance(error, socket.gaierror):
            return "host not found"
        if isinstance(error, TimeoutError):
            return "connection timed out"
        if "InvalidCatalogNameError" in names:
            return "no such database"
        if names & {"InvalidPasswordError", "InvalidAuthorizationSpecificationError"}:
            return f"authentication failed ({type(error).__name__})"
        if isinstance(error, ssl.SSLError | ConnectionError) or names & {
            "PostgresConnectionError",
            "ClientCannotConnectError",
            "CannotConnectNowError",
            "TooManyConnectionsError",
        }:
            return f"cannot connect: {error}"
        if isinstance(error, OSError) and error.errno is not None:
            return f"cannot connect: {error.strerror}"
        todo += [getattr(error, "orig", None), error.__cause__, error.__context__]
    return None


def engine_options(settings: StoreSettings) -> dict[str, Any]:
    """create_async_engine's keyword arguments besides the URL: for PostgreSQL, the driver's
    connect arguments (TLS, password file, timeout) and the pool's size. The libpq options
    are given to asyncpg as it takes them, never in the URL, where it does not."""
    if settings.is_sqlite:
        return {}
    connect: dict[str, Any] = {}
    if settings.sslmode:
        connect["ssl"] = _tls(settings)
    if settings.passfile:
        connect["passfile"] = settings.passfile
    if settings.connect_timeout is not None:
        connect["timeout"] = settings.connect_timeout
    options: dict[str, Any] = {"pool_pre_ping": True, "connect_args": connect}
    if settings.pool_size is not None:
        options["pool_size"] = settings.pool_size
    if settings.max_overflow is not None:
        options["max_overflow"] = settings.max_overflow
    return options


def _tls(settings: StoreSettings) -> ssl.SSLContext | str:
    """libpq's sslmode as asyncpg takes it: the modes that may fall back to plaintext as their
    names (asyncpg tries as libpq does); the others as a context that checks what libpq
    checks: "require" nothing (the chain if a root certificate is given), "verify-ca" the
    chain, "verify-full" the chain and the host name."""
    if settings.sslmode in ("disable", "allow", "prefer"):
        return settings.sslmode
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        if settings.sslrootcert == "system":
            context.load_default_certs()
        elif settings.sslrootcert:
            context.load_verify_locations(cafile=settings.sslrootcert)
        if settings.sslcert:
            context.load_cert_chain(settings.sslcert, settings.sslkey)
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"store.url: sslrootcert, sslcert or sslkey cannot be loaded: {exc}",
            reason="config-invalid",
        ) from None
    context.check_hostname = settings.sslmode == "verify-full"
    if settings.sslmode == "require" and not settings.sslrootcert:
        context.verify_mode = ssl.CERT_NONE
    return context


def masked_url(url: str) -> str:
    """A store URL fit to print: its password, if any, as ``***``."""
    return make_url(url).render_as_string(hide_password=True)


class Database:
    """One database: its engines, SQLite's own writer connection and thread, and the
    transactions every part of the store runs in."""

    def __init__(self, url: str | StoreSettings) -> None:
        self.settings = url if isinstance(url, StoreSettings) else store_settings(url)
        self.url = url = self.settings.url
        self.engine: AsyncEngine = create_async_engine(url, **engine_options(self.settings))
        self._alone: AsyncEngine | None = None  # connect_alone's
        self.is_sqlite = self.settings.is_sqlite
        # SQLite has one write lock per database, and a connection that finds it taken sleeps
        # in SQLite's busy handler (1, 2, 5, 10 ms ...) before it tries again; this hub's own
        # writers queue here instead, and take it the moment it is free
        self._write_turn = asyncio.Lock()
        self._sync_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        self._writer_conn: Connection | None = None
        # called with each committed transaction, and when a commit's outcome is unknown
        # (its caller was cancelled while the disk had it): the trail keeps its tail by them
        self.committed: list[Callable[[Tx], None]] = []
        self.uncertain: list[Callable[[], None]] = []
        self.numbered = not self.is_sqlite  # asyncpg takes $1, $2 ...; sqlite3 takes ?
        self.errors: tuple[type[BaseException], ...] = (
            SQLAlchemyError,
            OSError,
            sqlite3.Error,
            self.engine.dialect.loaded_dbapi.Error,
        )
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            # The writing transactions have a connection of their own with the plain sqlite3
            # driver. Their statements run in the event loop, where they take microseconds
            # each; only the COMMIT, which waits for the disk, goes to the writer thread. A
            # thread running the statements would give up the GIL inside every sqlite3 step
            # and wait for a busy event loop to hand it back each time (docs/adr/0005).
            self._sync_engine = create_engine(
                url.replace("sqlite+aiosqlite:", "sqlite:", 1), pool_size=1, max_overflow=0
            )
            event.listen(self._sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(self._sync_engine, "connect", _no_busy_wait)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="store-writer")

        self.wal_restart_pages = WAL_RESTART_PAGES
        self.time: Callable[[datetime], Any] = sqlite_time if self.is_sqlite else utc_time

    @property
    def sqlite_file(self) -> Path | None:
        """The SQLite database's file; None on PostgreSQL or for an in-memory database."""
        name = self.settings.database
        return Path(name) if self.is_sqlite and name not in ("", ":memory:") else None

    async def schema_state(self) -> migrate.SchemaState:
        """The database's schema revision and the code's (hub/store/migrate.py); reads only."""

        async def read() -> migrate.SchemaState:
            async with self.engine.connect() as conn:
                return await conn.run_sync(migrate.read_state)

        return await self.run(read)

    async def prepare(self, *, create: bool = False, upgrade_hint: str = UPGRADE) -> None:
        """Make sure the database is at this code's schema revision. An empty database gets
        the schema when ``create`` (a hub's first start); any other difference is refused with
        a ``SchemaError`` saying what was found, what is needed and what to run."""
        state = await self.schema_state()
        if state.status == "current":
            return
        if state.status == "empty" and create:
            await self.upgrade()
            return
        raise SchemaError(schema_problem(state, upgrade_hint))

    async def upgrade(self) -> tuple[migrate.SchemaState, migrate.SchemaState]:
        """Bring the database to this code's revision, in one transaction: an unversioned one
        (the last release before migrations) is first recognised as the baseline. Returns the
        state before and after. A database ahead of the code is refused."""

        async def run() -> tuple[migrate.SchemaState, migrate.SchemaState]:
            async with self._writer(), self.engine.connect() as conn:
                if self.is_sqlite:
                    # SQLite changes a table by copying it, dropping it and renaming the copy
                    # (Alembic's batch mode), which references from other tables forbid while
                    # foreign keys are enforced; enforcement can only be switched off outside
                    # a transaction, and the references are checked before the commit instead
                    # (SQLite's own procedure for changing a table)
                    await conn.run_sync(_foreign_keys, False)
                try:
                    conn = await conn.execution_options(immediate=True)
                    async with conn.begin():
                        before = await conn.run_sync(migrate.read_state)
                        if before.status in ("ahead", "unknown"):
                            raise SchemaError(schema_problem(before, ""))
                        if before.status == "unversioned":
                            await conn.run_sync(migrate.adopt)
                        await conn.run_sync(migrate.upgrade)
                        if self.is_sqlite:
                            await conn.run_sync(_references_hold)
                        after = await conn.run_sync(migrate.read_state)
                finally:
                    if self.is_sqlite:
                        await conn.invalidate()  # not back to the pool without its pragmas
            return before, after

        return await self.run(run)

    async def probe(self) -> None:
        """Whether the database answers now: a StoreError if it does not. Cheap enough to run
        every few seconds. PostgreSQL: ``SELECT 1`` on a pooled connection (checked before use,
        so a server that went away fails here). SQLite: a new read-only connection reads the
        file's first page, because the pooled connections keep the file they opened even once
        it is gone, replaced or unreadable, and so would never notice."""
        if not self.is_sqlite:

            async def select_one() -> None:
                async with self.engine.connect() as conn:
                    await conn.exec_driver_sql("SELECT 1")

            await self.run(select_one)
            return
        path = make_url(self.url).database or ""

        def read_first_page() -> None:
            conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=BUSY_SECONDS)
            try:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
            finally:
                conn.close()

        async def probe_file() -> None:
            await asyncio.to_thread(read_first_page)

        await self.run(probe_file)

    async def close(self) -> None:
        if self._writer_thread is not None and self._sync_engine is not None:
            async with self._write_turn:
                if self._writer_conn is not None:
                    self._writer_conn.close()
                    self._writer_conn = None
            engine = self._sync_engine
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, engine.dispose)
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None
        if self._alone is not None:
            await self._alone.dispose()
        await self.engine.dispose()

    async def connect_alone(self) -> AsyncConnection:
        """A connection of its own, outside the pool the hub's work shares (which it would
        otherwise hold a place of for as long as it is open): the one-instance lock's."""
        if self._alone is None:
            options = engine_options(self.settings)
            for pooled in ("pool_size", "max_overflow", "pool_pre_ping"):
                options.pop(pooled, None)
            self._alone = create_async_engine(self.url, poolclass=NullPool, **options)
        return await self._alone.connect()

    async def copy_wal(self) -> bool:
        """Copy what SQLite's write-ahead log holds into the database and let the log start
        again from its beginning; True if it did. Nothing on PostgreSQL.

        SQLite restarts the log only when a write begins after a checkpoint copied all of it,
        which never happens while checkpoints run beside a writer that commits all the time:
        the log then grows without end, and so does every read's search through it. So this
        runs in two steps. First a PASSIVE checkpoint on a reading connection copies what the
        log holds while writers go on. Then, once the log is past ``wal_restart_pages``,
        writers are held for a second one on the writer's own connection, which has only the
        pages committed meanwhile left to copy; the next write starts the log afresh. A
        checkpoint inside the commit instead (SQLite's wal_autocheckpoint) would hold that
        commit for the whole copy."""
        if not self.is_sqlite:
            return False

        async def copy() -> int:
            async with self.engine.connect() as conn:
                result = await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                _busy, pages, _copied = tuple(result.one())
            return int(pages)

        if await self.run(copy) < self.wal_restart_pages:
            return False
        async with self._write_turn:
            conn = self._writer_conn
            if conn is None:
                return False
            try:
                await self._on_writer_thread(_copy_wal_on_thread, conn)
            except self.errors as exc:
                self._discard_writer()
                raise StoreError(f"copying the WAL failed: {type(exc).__name__}") from exc
        return True

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        """Run ``fn`` in one writing transaction, committed when it returns, and return what
        it returned. ``fn`` is synchronous: plain SQL on ``Tx``'s cursor, or SQLAlchemy Core
        on ``Tx.conn``. On PostgreSQL it runs through the async driver (``run_sync``); on
        SQLite in the event loop, with the commit on the writer thread."""
        if self._writer_thread is None:
            holder: list[Tx] = []

            def run(conn: Connection) -> T:
                tx = Tx(conn, self.numbered)
                holder.append(tx)
                return fn(tx)

            async with self.engine.connect() as session, session.begin():
                result = await session.run_sync(run)
            self._after_commit(holder[0])
            return result
        async with self._write_turn:
            conn = await self._begin_writing()
            try:
                tx = Tx(conn, self.numbered)
                result = fn(tx)
            except BaseException:
                self._abandon(conn)
                raise
            await self._commit(conn)
            self._after_commit(tx)
            return result

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """``transaction``, with every database failure as a StoreError (for group commits)."""
        return await self.run(lambda: self.transaction(fn))

    async def _begin_writing(self) -> Connection:
        """The writer connection in a new transaction that holds SQLite's write lock. Another
        process holding it (an operator's command) is waited for here, without blocking the
        event loop, for at most ``BUSY_SECONDS``."""
        assert self._sync_engine is not None  # noqa: S101 - only called for SQLite
        deadline = time.monotonic() + BUSY_SECONDS
        pause = 0.001
        while True:
            if self._writer_conn is None:
                self._writer_conn = self._sync_engine.connect()
            conn = self._writer_conn
            try:
                conn.connection.dbapi_connection.execute("BEGIN IMMEDIATE")  # type: ignore[union-attr]
                return conn
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                    self._discard_writer()
                    raise
                if time.monotonic() + pause > deadline:
                    raise StoreError(
                        f"the database stayed locked by another process for {BUSY_SECONDS:g} s",
                        reason="store-busy",
                    ) from exc
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)

    async def _commit(self, conn: Connection) -> None:
        """COMMIT on the writer thread (SQLite waits for the disk there, without the GIL)."""
        try:
            await self._on_writer_thread(_commit_on_thread, conn)
        except asyncio.CancelledError:
            for forget in self.uncertain:  # committed, or not
                forget()
            raise

    async def _on_writer_thread(self, fn: Callable[[Connection], None], conn: Connection) -> None:
        """``fn(conn)`` on the writer thread. A caller cancelled meanwhile still waits for it
        to end, because the connection is not free before; then the cancellation goes on. A
        failure rolls back what the connection holds."""
        assert self._writer_thread is not None  # noqa: S101 - only called for SQLite
        future = asyncio.get_running_loop().run_in_executor(self._writer_thread, fn, conn)
        cancelled = False
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                cancelled = True
            except BaseException:  # noqa: BLE001 - it is the future's, and raised below
                break
        if future.exception() is not None:
            self._abandon(conn)
        if cancelled:
            raise asyncio.CancelledError
        future.result()

    def _abandon(self, conn: Connection) -> None:
        """Roll back whatever the writer connection holds; a connection that cannot is given
        up, and the next transaction opens a new one."""
        try:
            conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            if conn.in_transaction():
                conn.rollback()
        except self.errors:
            self._discard_writer()

    def _discard_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with contextlib.suppress(*self.errors):
                conn.invalidate()
                conn.close()

    def _after_commit(self, tx: Tx) -> None:
        for keep in self.committed:
            keep(tx)

    @asynccontextmanager
    async def session(self, *, writing: bool = False) -> AsyncIterator[AsyncSession]:
        """An ORM session; ``writing`` ones take SQLite's write lock when they begin."""
        if not writing:
            async with AsyncSession(self.engine, expire_on_commit=False) as session:
                yield session
            return
        async with self._writer(), self.engine.connect() as conn:
            conn = await conn.execution_options(immediate=True)
            async with AsyncSession(bind=conn, expire_on_commit=False) as session:
                yield session

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        if not self.is_sqlite:  # PostgreSQL locks rows, not the database
            yield
            return
        async with self._write_turn:
            yield

    async def run(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except StoreError:
            raise
        except self.errors as exc:
            if _refuses_data(exc):
                raise StoreDataError(f"the store refused the data: {type(exc).__name__}") from exc
            why = _unavailable(exc)
            if why is not None:  # named by host, port and database; never the password
                password = urllib.parse.urlsplit(self.url).password
                if password:
                    why = why.replace(password, "***")
                raise StoreError(f"{self.settings.where}: {why}") from exc
            raise StoreError(f"store operation failed: {type(exc).__name__}") from exc

    def insert_ignoring_conflicts(self, table: Table) -> Any:
        dialect = sqlite if self.is_sqlite else postgresql
        return dialect.insert(table).on_conflict_do_nothing()
