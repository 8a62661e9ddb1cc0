"""The hub's store: SQLModel tables and the transactions the hub needs.

One class, ``Store``, is the seam: every method is one transaction, and every database failure
leaves it as a ``StoreError``. SQLite (WAL) is the embedded default; PostgreSQL through asyncpg
runs the same code. The store knows nothing of gRPC or signatures; callers hand it values.

The tables are declared with SQLModel; the paths every message takes (queueing, claiming due
messages, settling receipts, accepting inbound messages) are written as SQLAlchemy Core
statements over many rows at once, because the ORM's per-object bookkeeping costs more than
the database does at thousands of messages per second (docs/adr/0005).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    LargeBinary,
    Table,
    UniqueConstraint,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    text,
    tuple_,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub import merkle, trail, treestore
from hub.errors import StoreError

T = TypeVar("T")

# Advisory lock key for inbound inserts (PostgreSQL): "CHUBINBD" as a 64-bit integer.
INBOUND_LOCK = int.from_bytes(b"CHUBINBD", "big") & 0x7FFFFFFFFFFFFFFF
# ... and for trail appends: one transaction at a time sequences the trail.
TRAIL_LOCK = int.from_bytes(b"CHUBTRAL", "big") & 0x7FFFFFFFFFFFFFFF

QUEUED, DEAD = "queued", "dead"


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the store writes is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ts(nullable: bool = False) -> Any:
    column = Column(DateTime(timezone=True), nullable=nullable)
    return Field(default=None, sa_column=column) if nullable else Field(sa_column=column)


def _blob(nullable: bool = False) -> Any:
    return Field(
        default=None if nullable else b"", sa_column=Column(LargeBinary, nullable=nullable)
    )


class OutboundMessage(SQLModel, table=True):
    """A message this hub signed for a partner. Never deleted; its status changes."""

    __tablename__ = "outbound_message"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True)
    correlation_id: str = Field(default="", max_length=128)
    recipient: str = Field(max_length=16, index=True)
    body_type: str = Field(max_length=128)
    envelope: bytes = _blob()
    envelope_digest: bytes = _blob()
    document_digest: bytes | None = _blob(nullable=True)  # original domestic document, if any
    business_keys: str = Field(default="{}")  # JSON object: name -> list of values
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    submission_id: str | None = Field(default=None, max_length=128, index=True)
    # queued -> delivered | rejected (by the partner) | dead (expired, dropped) | replaced
    # (an operator retried it as a new message)
    status: str = Field(default=QUEUED, max_length=16, index=True)


class OutboxEntry(SQLModel, table=True):
    """Work for the delivery worker: one row per outbound message not yet settled.

    ``state`` is "queued" (waiting, or retrying after ``attempts`` failures) or "dead": a dead
    letter that stays until an operator retries or drops it, with ``dead_reason``.
    """

    __tablename__ = "outbox"
    # ids are never reused (AUTOINCREMENT): a sender's cursor and a late settlement must not
    # meet a newer entry under an old id
    __table_args__ = (
        Index("ix_outbox_partner_state_id", "partner", "state", "id"),
        {"sqlite_autoincrement": True},
    )
    id: int | None = Field(default=None, primary_key=True)
    outbound_id: int = Field(foreign_key="outbound_message.id", unique=True)
    partner: str = Field(max_length=16)
    state: str = Field(default=QUEUED, max_length=8)
    next_attempt_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    attempts: int = 0
    last_error: str | None = None
    dead_reason: str | None = None


class ReceiptRecord(SQLModel, table=True):
    """A signed receipt a partner returned for one of our outbound messages."""

    __tablename__ = "receipt"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True, foreign_key="outbound_message.message_id")
    receiver: str = Field(max_length=16)
    outcome: str = Field(max_length=16)
    reason: str = Field(default="", max_length=64)
    envelope_digest: bytes = _blob()
    signed_receipt: bytes = _blob()  # serialised SignedReceipt, exactly as received
    received_at: datetime = _ts()


class InboundMessage(SQLModel, table=True):
    """A message a partner delivered and this hub accepted. ``id`` is the subscriber cursor."""

    __tablename__ = "inbound_message"
    __table_args__ = (
        UniqueConstraint("sender", "message_id", name="uq_inbound_sender_message"),
        {"sqlite_autoincrement": True},  # cursors handed to subscribers are never reused
    )
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, index=True)
    sender: str = Field(max_length=16)
    correlation_id: str = Field(default="", max_length=128)
    body_type: str = Field(max_length=128)
    header: bytes = _blob()
    body: bytes = _blob()
    envelope_digest: bytes = _blob()
    business_keys: str = Field(default="{}")
    received_at: datetime = _ts()
    signed_receipt: bytes = _blob()  # what we answered, to answer duplicates with the same
    # a newer revision of the same state was already held when this arrived
    superseded: bool = False


class CurrentState(SQLModel, table=True):
    """The newest revision of each piece of state that changes over time: an AEO status per
    issuing administration and AEO id, a control result per declaration or containers."""

    __tablename__ = "current_state"
    party: str = Field(primary_key=True, max_length=16)  # who issues this state
    kind: str = Field(primary_key=True, max_length=32)  # "aeo", "control"
    key: str = Field(primary_key=True, max_length=512)
    revision: int = Field(sa_column=Column(BigInteger, nullable=False))
    message_id: str = Field(max_length=36)
    updated_at: datetime = _ts()


class Submission(SQLModel, table=True):
    """A domestic submission's idempotency key and the answer it got."""

    __tablename__ = "submission"
    submission_id: str = Field(primary_key=True, max_length=128)
    response: bytes = _blob()
    created_at: datetime = _ts()


class Rejection(SQLModel, table=True):
    """Something this hub refused: from a partner or from a domestic system."""

    __tablename__ = "rejection"
    id: int | None = Field(default=None, primary_key=True)
    at: datetime = _ts()
    source: str = Field(max_length=64)  # partner party id, or "domestic"
    message_id: str = Field(default="", max_length=64)
    reason: str = Field(max_length=64)
    detail: str = Field(default="", max_length=1024)
    # SHA-256 of what was refused: the envelope from a partner, the document from a domestic system
    digest: bytes | None = _blob(nullable=True)


class SubscriberCursor(SQLModel, table=True):
    """The last inbound cursor a domestic subscriber acknowledged."""

    __tablename__ = "subscriber_cursor"
    subscriber: str = Field(primary_key=True, max_length=128)
    acknowledged: int = 0
    updated_at: datetime = _ts()


class TrailEntry(SQLModel, table=True):
    """One leaf of the trail (docs/trail.md): ``leaf`` is the TrailEvent as appended; the
    other columns repeat some of its fields so auditors' queries can use indexes."""

    __tablename__ = "trail_entry"
    __table_args__ = (
        # most events have no correlation id: index only those that do
        Index(
            "ix_trail_entry_correlation",
            "correlation_id",
            sqlite_where=text("correlation_id != ''"),
            postgresql_where=text("correlation_id != ''"),
        ),
    )
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    kind: str = Field(max_length=32)
    at: datetime = _ts()
    message_id: str = Field(default="", max_length=64, index=True)
    correlation_id: str = Field(default="", max_length=128)
    sender: str = Field(default="", max_length=128)
    recipient: str = Field(default="", max_length=128)
    body_type: str = Field(default="", max_length=128)
    leaf: bytes = _blob()
    leaf_hash: bytes = _blob()  # the tree's level-0 node (hub/treestore.py), kept in this row


class TrailKey(SQLModel, table=True):
    """A business key named by a trail entry (LRN, MRN, container id, AEO id ...)."""

    __tablename__ = "trail_key"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: one b-tree, not two
    name: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=512)
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})


class TrailNode(SQLModel, table=True):
    """The hash of a perfect subtree of the trail: leaves [idx * 2^level, (idx + 1) * 2^level),
    level 1 and up (level 0, the leaf hashes, are in trail_entry). Written once, when the
    subtree is complete; proofs are read from these (hub/treestore.py)."""

    __tablename__ = "trail_node"
    __table_args__ = {"sqlite_with_rowid": False}
    level: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    idx: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    hash: bytes = _blob()


class TrailCheckpoint(SQLModel, table=True):
    """A checkpoint the hub signed: the trail's size and root, and the signed note."""

    __tablename__ = "trail_checkpoint"
    size: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    root: bytes = _blob()
    note: bytes = _blob()
    signed_at: datetime = _ts()


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


OUTBOUND = _table("outbound_message")
OUTBOX = _table("outbox")
RECEIPT = _table("receipt")
INBOUND = _table("inbound_message")
STATE = _table("current_state")
SUBMISSION = _table("submission")
TRAIL = _table("trail_entry")
TRAIL_KEY = _table("trail_key")
TRAIL_NODE = _table("trail_node")
CHECKPOINT = _table("trail_checkpoint")


def _columns(table: Table) -> tuple[str, ...]:
    return tuple(c.name for c in table.columns if c.name != "id")


OUTBOUND_COLUMNS = _columns(OUTBOUND)
INBOUND_COLUMNS = _columns(INBOUND)
RECEIPT_COLUMNS = _columns(RECEIPT)
REJECTION = _table("rejection")
REJECTION_COLUMNS = _columns(REJECTION)


def _row(obj: object, columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: getattr(obj, c) for c in columns}


# The hot paths build these plain rows, not SQLModel objects: constructing a table model
# (validation, ORM instrumentation) costs more than inserting the row does.


@dataclass(slots=True)
class NewOutbound:
    """An outbound message to queue (the columns of ``OutboundMessage``)."""

    message_id: str
    recipient: str
    body_type: str
    envelope: bytes
    envelope_digest: bytes
    created_at: datetime
    expires_at: datetime | None = None
    correlation_id: str = ""
    document_digest: bytes | None = None
    business_keys: str = "{}"
    submission_id: str | None = None
    status: str = QUEUED
    id: int | None = None


@dataclass(slots=True)
class InboundRow:
    """An inbound message to accept (the columns of ``InboundMessage``)."""

    message_id: str
    sender: str
    body_type: str
    envelope_digest: bytes
    received_at: datetime
    correlation_id: str = ""
    header: bytes = b""
    body: bytes = b""
    business_keys: str = "{}"
    signed_receipt: bytes = b""
    superseded: bool = False
    id: int | None = None
    trail_index: int = 0  # its "received" leaf, set when it is accepted (not a column)


@dataclass(slots=True)
class ReceiptRow:
    """A partner's receipt to store (the columns of ``ReceiptRecord``)."""

    message_id: str
    receiver: str
    outcome: str
    signed_receipt: bytes
    received_at: datetime
    reason: str = ""
    envelope_digest: bytes = b""


@dataclass(frozen=True)
class DueDelivery:
    entry_id: int
    outbound_id: int
    message_id: str
    partner: str
    envelope: bytes
    envelope_digest: bytes
    attempts: int
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Settlement:
    """What a partner's receipt means for one outbound message."""

    due: DueDelivery
    receipt: ReceiptRow | ReceiptRecord
    # a final rejection becomes a dead letter with this reason; None settles the message
    dead_reason: str | None = None


@dataclass(frozen=True)
class StateRef:
    """Which piece of state a message carries, and its revision."""

    party: str
    kind: str
    key: str
    revision: int


@dataclass
class Incoming:
    """An inbound message to accept, with the state it updates (if any)."""

    row: InboundRow
    state: StateRef | None = None


@dataclass(frozen=True)
class Accepted:
    """The outcome of accepting one inbound message: ``fresh`` is False when the same sender's
    message id was accepted before; ``row`` is then the earlier one."""

    fresh: bool
    row: InboundRow


@dataclass(frozen=True)
class MessageRow:
    """One line of ``customs-hub messages``."""

    direction: str
    message_id: str
    body_type: str
    partner: str
    status: str
    receipt: str
    business_keys: dict[str, list[str]]
    at: datetime


@dataclass(frozen=True)
class OutboxRow:
    """One line of ``customs-hub outbox``."""

    message_id: str
    partner: str
    body_type: str
    state: str  # queued, retrying, dead
    attempts: int
    reason: str
    created_at: datetime
    next_attempt_at: datetime


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (CLI, subscribers) run while the hub writes; synchronous=FULL keeps
    # every acknowledged commit durable across power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    # No checkpoint inside a commit (one every 1000 pages otherwise, which stalls that commit
    # for the copy and its fsync): the hub checkpoints beside its writers (Store.checkpoint)
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


class _FastInsert:
    """An INSERT handed straight to the driver's executemany, compiled once: SQLAlchemy's
    per-row work (building parameters, type processing) costs more than SQLite's insert for
    small rows. Callers pass tuples in ``columns`` order, with datetimes made by ``time``
    (UTC; on SQLite the text SQLAlchemy's DateTime stores)."""

    def __init__(
        self,
        statement: Any,
        table: Table,
        columns: Sequence[str],
        dialect: Any,
        is_sqlite: bool,
    ) -> None:
        self.columns = tuple(columns)
        compiled = statement.values({c: bindparam(c) for c in self.columns}).compile(
            dialect=dialect,
            for_executemany=True,  # no implicit RETURNING
        )
        if tuple(compiled.positiontup or ()) != self.columns:
            raise StoreError(f"cannot compile a plain insert into {table.name}")
        self.sql = compiled.string
        self.time: Callable[[datetime], Any] = _sqlite_time if is_sqlite else _utc_time
        self._times = [
            i for i, c in enumerate(self.columns) if isinstance(table.c[c].type, DateTime)
        ]

    def rows(self, objects: Sequence[object]) -> list[tuple[Any, ...]]:
        """Tuples from objects with an attribute per column."""
        out = []
        for obj in objects:
            row = [getattr(obj, c) for c in self.columns]
            for i in self._times:
                if row[i] is not None:
                    row[i] = self.time(row[i])
            out.append(tuple(row))
        return out

    def __call__(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        if rows:
            conn.exec_driver_sql(self.sql, list(rows))


def _utc_time(value: datetime) -> datetime:
    return as_utc(value).astimezone(UTC)


def _sqlite_time(value: datetime) -> str:
    v = _utc_time(value)
    return (
        f"{v.year:04d}-{v.month:02d}-{v.day:02d} "
        f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}.{v.microsecond:06d}"
    )


class _Statements:
    """The statements every message takes, built once: building a statement and its cache
    key costs more than running it does (about 1 ms per transaction when built each time)."""

    def __init__(self, dialect: Any, driver: Any, is_sqlite: bool) -> None:

        def fast(statement: Any, table: Table) -> _FastInsert:
            generated = table.autoincrement_column
            columns = [c.name for c in table.columns if c is not generated]
            return _FastInsert(statement, table, columns, driver, is_sqlite)

        self.insert_outbound = insert(OUTBOUND).returning(OUTBOUND.c.message_id, OUTBOUND.c.id)
        self.insert_outbox = insert(OUTBOX).returning(OUTBOX.c.outbound_id, OUTBOX.c.id)
        self.insert_submission = insert(SUBMISSION)
        self.insert_receipt = fast(dialect.insert(RECEIPT).on_conflict_do_nothing(), RECEIPT)
        self.set_outbound_status = (
            update(OUTBOUND)
            .where(OUTBOUND.c.id == bindparam("oid"))
            .values(status=bindparam("new_status"))
        )
        self.delete_entry = delete(OUTBOX).where(
            OUTBOX.c.id == bindparam("eid"), OUTBOX.c.outbound_id == bindparam("oid")
        )
        self.earlier_inbound = core_select(
            INBOUND.c.id,
            INBOUND.c.sender,
            INBOUND.c.message_id,
            INBOUND.c.envelope_digest,
            INBOUND.c.signed_receipt,
            INBOUND.c.body_type,
        ).where(INBOUND.c.message_id.in_(bindparam("ids", expanding=True)))
        self.insert_inbound = fast(insert(INBOUND), INBOUND)
        self.held_state = core_select(
            STATE.c.party, STATE.c.kind, STATE.c.key, STATE.c.revision
        ).where(STATE.c.key.in_(bindparam("keys", expanding=True)))
        upsert = dialect.insert(STATE)
        self.upsert_state = upsert.on_conflict_do_update(
            index_elements=["party", "kind", "key"],
            set_={
                "revision": upsert.excluded.revision,
                "message_id": upsert.excluded.message_id,
                "updated_at": upsert.excluded.updated_at,
            },
        )
        self.inbound_lock = core_select(func.pg_advisory_xact_lock(INBOUND_LOCK))
        self.trail_lock = core_select(func.pg_advisory_xact_lock(TRAIL_LOCK))
        self.trail_size = core_select(func.coalesce(func.max(TRAIL.c.idx) + 1, 0))
        self.trail_nodes = core_select(
            TRAIL_NODE.c.level, TRAIL_NODE.c.idx, TRAIL_NODE.c.hash
        ).where(tuple_(TRAIL_NODE.c.level, TRAIL_NODE.c.idx).in_(bindparam("keys", expanding=True)))
        self.trail_leaf_hashes = core_select(TRAIL.c.idx, TRAIL.c.leaf_hash).where(
            TRAIL.c.idx.in_(bindparam("indexes", expanding=True))
        )
        # the trail's rows are built as tuples in these orders (Store._append_trail)
        self.insert_trail = _FastInsert(
            insert(TRAIL),
            TRAIL,
            (
                "idx",
                "kind",
                "at",
                "message_id",
                "correlation_id",
                "sender",
                "recipient",
                "body_type",
                "leaf",
                "leaf_hash",
            ),
            driver,
            is_sqlite,
        )
        self.insert_trail_key = _FastInsert(
            insert(TRAIL_KEY), TRAIL_KEY, ("name", "value", "idx"), driver, is_sqlite
        )
        self.insert_trail_node = _FastInsert(
            insert(TRAIL_NODE), TRAIL_NODE, ("level", "idx", "hash"), driver, is_sqlite
        )


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=not url.startswith("sqlite")
        )
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one write lock per database, and a connection that finds it taken sleeps
        # in SQLite's busy handler (1, 2, 5, 10 ms ...) before it tries again; this hub's own
        # writers queue here instead, and take it the moment it is free
        self._write_turn = asyncio.Lock()
        self._sync_engine: Engine | None = None
        self._writer_thread: ThreadPoolExecutor | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
            # The transactions every message takes run whole on one writer thread with the
            # plain sqlite3 driver: one hand-over between the event loop and the thread per
            # transaction, where aiosqlite needs one per statement, cursor and fetch
            self._sync_engine = create_engine(
                url.replace("sqlite+aiosqlite:", "sqlite:", 1), pool_size=1, max_overflow=0
            )
            event.listen(self._sync_engine, "connect", _set_sqlite_pragmas)
            event.listen(self._sync_engine, "begin", _sqlite_begin)
            self._writer_thread = ThreadPoolExecutor(1, thread_name_prefix="store-writer")

        self._sql = _Statements(
            sqlite if self.is_sqlite else postgresql, self.engine.dialect, self.is_sqlite
        )

    async def create_all(self) -> None:
        await self._run(self._create_all)

    async def _create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def close(self) -> None:
        if self._writer_thread is not None and self._sync_engine is not None:
            engine = self._sync_engine
            await asyncio.get_running_loop().run_in_executor(self._writer_thread, engine.dispose)
            self._writer_thread.shutdown(wait=True)
            self._writer_thread = None
        await self.engine.dispose()

    async def checkpoint(self) -> None:
        """Copy what the write-ahead log holds into the database, without stopping writers
        (SQLite's PASSIVE checkpoint, on a reading connection's thread); nothing on
        PostgreSQL, which checkpoints by itself."""
        if not self.is_sqlite:
            return

        async def work() -> None:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")

        await self._run(work)

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """Run ``fn`` in one writing transaction, committed when it returns. ``fn`` is plain
        synchronous SQLAlchemy Core: on SQLite it runs on the writer thread, on PostgreSQL in
        the event loop through the async driver (``run_sync``)."""
        if self._writer_thread is None:
            async with self.engine.connect() as conn, conn.begin():
                return await conn.run_sync(fn)
        async with self._write_turn:
            return await asyncio.get_running_loop().run_in_executor(
                self._writer_thread, self._sqlite_transaction, fn
            )

    def _sqlite_transaction(self, fn: Callable[[Connection], T]) -> T:
        assert self._sync_engine is not None  # noqa: S101 - only called for SQLite
        with self._sync_engine.connect() as conn:
            conn = conn.execution_options(immediate=True)
            with conn.begin():
                return fn(conn)

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
    async def writing(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a writing transaction, committed when the block ends."""
        async with self._writer(), self.engine.connect() as conn:
            conn = await conn.execution_options(immediate=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def _writer(self) -> AsyncIterator[None]:
        if not self.is_sqlite:  # PostgreSQL locks rows, not the database
            yield
            return
        async with self._write_turn:
            yield

    async def _run(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"store operation failed: {type(exc).__name__}") from exc

    def _insert_ignoring_conflicts(self, table: Table) -> Any:
        dialect = sqlite if self.is_sqlite else postgresql
        return dialect.insert(table).on_conflict_do_nothing()

    # --- outbound --------------------------------------------------------------------------

    async def enqueue(
        self,
        messages: Sequence[NewOutbound | OutboundMessage],
        submissions: Sequence[tuple[str, bytes]] = (),
    ) -> list[DueDelivery]:
        """Store outbound messages, their outbox entries and the answers to idempotent
        submissions in one transaction; returns the new entries, due now, in id order."""

        def work(conn: Connection) -> list[DueDelivery]:
            entries = self._enqueue(conn, messages)
            self._append_trail(conn, [_queued_event(m) for m in messages])
            if submissions:
                now = utcnow()
                conn.execute(
                    self._sql.insert_submission,
                    [
                        {"submission_id": sid, "response": response, "created_at": now}
                        for sid, response in submissions
                    ],
                )
            return entries

        return await self._run(lambda: self.transaction(work))

    def _enqueue(
        self, conn: Connection, messages: Sequence[NewOutbound | OutboundMessage]
    ) -> list[DueDelivery]:
        if not messages:
            return []
        # RETURNING in parameter order would make SQLAlchemy send one INSERT per row on SQLite;
        # unordered, it sends multi-row INSERTs, and the ids are matched by a unique column
        result = conn.execute(
            self._sql.insert_outbound, [_row(m, OUTBOUND_COLUMNS) for m in messages]
        )
        outbound_ids: dict[str, int] = {r[0]: r[1] for r in result.all()}
        if len(outbound_ids) != len(messages):  # anything else is a driver fault
            raise StoreError("outbound messages got no ids on insert")
        for m in messages:
            m.id = outbound_ids[m.message_id]
        result = conn.execute(
            self._sql.insert_outbox,
            [
                {
                    "outbound_id": m.id,
                    "partner": m.recipient,
                    "state": QUEUED,
                    "next_attempt_at": m.created_at,
                    "expires_at": m.expires_at,
                    "attempts": 0,
                }
                for m in messages
            ],
        )
        entry_ids: dict[int, int] = {r[0]: r[1] for r in result.all()}
        if len(entry_ids) != len(messages):
            raise StoreError("outbox entries got no ids on insert")
        entries = [
            DueDelivery(
                entry_ids[m.id],  # type: ignore[index]
                m.id,  # type: ignore[arg-type]
                m.message_id,
                m.recipient,
                m.envelope,
                m.envelope_digest,
                0,
                m.expires_at,
            )
            for m in messages
        ]
        entries.sort(key=lambda e: e.entry_id)
        return entries

    async def submission(self, submission_id: str) -> bytes | None:
        """The answer an earlier submission with this idempotency key got, if any."""

        async def work() -> bytes | None:
            async with self.engine.connect() as conn:
                result = await conn.execute(
                    core_select(SUBMISSION.c.response).where(
                        SUBMISSION.c.submission_id == submission_id
                    )
                )
                row = result.first()
                return bytes(row[0]) if row else None

        return await self._run(work)

    async def due(
        self, now: datetime, limit: int, partner: str | None = None, after: int = 0
    ) -> list[DueDelivery]:
        """Queued entries due at ``now``, oldest first (creation order), for one partner or
        all; ``after`` skips entries up to that id (the ones already in flight)."""

        async def work() -> list[DueDelivery]:
            query = (
                core_select(
                    OUTBOX.c.id,
                    OUTBOX.c.outbound_id,
                    OUTBOUND.c.message_id,
                    OUTBOX.c.partner,
                    OUTBOUND.c.envelope,
                    OUTBOUND.c.envelope_digest,
                    OUTBOX.c.attempts,
                    OUTBOX.c.expires_at,
                )
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .where(
                    OUTBOX.c.state == QUEUED,
                    OUTBOX.c.next_attempt_at <= now,
                    OUTBOX.c.id > after,
                )
                .order_by(OUTBOX.c.id)
                .limit(limit)
            )
            if partner is not None:
                query = query.where(OUTBOX.c.partner == partner)
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            return [
                DueDelivery(
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    bytes(r[4]),
                    bytes(r[5]),
                    r[6],
                    as_utc(r[7]) if r[7] else None,
                )
                for r in rows
            ]

        return await self._run(work)

    async def queued_partners(self) -> list[str]:
        async def work() -> list[str]:
            async with self.engine.connect() as conn:
                result = await conn.execute(
                    core_select(OUTBOX.c.partner).where(OUTBOX.c.state == QUEUED).distinct()
                )
                return [r[0] for r in result.all()]

        return await self._run(work)

    async def next_due_at(self, partner: str | None = None) -> datetime | None:
        async def work() -> datetime | None:
            query = core_select(func.min(OUTBOX.c.next_attempt_at)).where(OUTBOX.c.state == QUEUED)
            if partner is not None:
                query = query.where(OUTBOX.c.partner == partner)
            async with self.engine.connect() as conn:
                value = (await conn.execute(query)).scalar()
            return as_utc(value) if value else None

        return await self._run(work)

    async def record_receipts(self, results: Sequence[Settlement]) -> None:
        """Store partner receipts and settle their outbox entries, in one transaction: a
        delivered message leaves the outbox, a finally rejected one becomes a dead letter."""

        await self._run(lambda: self.transaction(lambda conn: self._settle(conn, results)))

    def _settle(self, conn: Connection, results: Sequence[Settlement]) -> None:
        if not results:
            return
        self._append_trail(conn, [_settled_event(r) for r in results])
        insert_receipt = self._sql.insert_receipt
        insert_receipt(conn, insert_receipt.rows([s.receipt for s in results]))
        conn.execute(
            self._sql.set_outbound_status,
            [
                {
                    "oid": s.due.outbound_id,
                    "new_status": "rejected" if s.receipt.outcome == "rejected" else "delivered",
                }
                for s in results
            ],
        )
        # entries are named by their id and their message, so a settlement that arrives late
        # can only ever touch its own entry
        settled = [
            {"eid": s.due.entry_id, "oid": s.due.outbound_id}
            for s in results
            if s.dead_reason is None
        ]
        if settled:
            conn.execute(self._sql.delete_entry, settled)
        for s in results:
            if s.dead_reason is not None:
                conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.id == s.due.entry_id, OUTBOX.c.outbound_id == s.due.outbound_id)
                    .values(state=DEAD, dead_reason=s.dead_reason[:1000])
                )

    async def record_failure(
        self,
        entry_ids: Sequence[int],
        error: str,
        next_attempt_at: datetime | None,
    ) -> None:
        """Count a failed attempt; ``next_attempt_at`` None leaves the entry's time alone (the
        partner as a whole is backing off, and entries keep their order)."""

        values: dict[str, Any] = {
            "attempts": OUTBOX.c.attempts + 1,
            "last_error": error[:1000],
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        statement = update(OUTBOX).where(OUTBOX.c.id.in_(list(entry_ids))).values(**values)
        failed = (
            core_select(OUTBOUND.c.message_id, OUTBOX.c.partner)
            .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
            .where(OUTBOX.c.id.in_(list(entry_ids)))
            .order_by(OUTBOX.c.id)
        )

        def work(conn: Connection) -> None:
            now = utcnow()
            events = [
                trail.Event(
                    "delivery-failed", now, message_id=r[0], recipient=r[1], detail=error[:300]
                )
                for r in conn.execute(failed)
            ]
            conn.execute(statement)
            self._append_trail(conn, events)

        await self._run(lambda: self.transaction(work))

    async def expire(self, now: datetime) -> int:
        """Turn queued messages whose envelope has expired into dead letters; returns how many."""

        def work(conn: Connection) -> int:
            expired = conn.execute(
                core_select(
                    OUTBOX.c.id, OUTBOX.c.outbound_id, OUTBOUND.c.message_id, OUTBOX.c.partner
                )
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .where(OUTBOX.c.state == QUEUED, OUTBOX.c.expires_at <= now)
                .order_by(OUTBOX.c.id)
            ).all()
            if not expired:
                return 0
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([r[0] for r in expired]))
                .values(
                    state=DEAD,
                    dead_reason=func.coalesce(
                        "expired undelivered; last error: " + OUTBOX.c.last_error,
                        "expired undelivered",
                    ),
                )
            )
            conn.execute(
                update(OUTBOUND)
                .where(OUTBOUND.c.id.in_([r[1] for r in expired]))
                .values(status=DEAD)
            )
            self._append_trail(
                conn,
                [
                    trail.Event(
                        "dead-lettered", now, message_id=r[2], recipient=r[3], reason="expired"
                    )
                    for r in expired
                ],
            )
            return len(expired)

        return await self._run(lambda: self.transaction(work))

    async def outbox_rows(self, now: datetime) -> list[OutboxRow]:
        async def work() -> list[OutboxRow]:
            query = (
                core_select(
                    OUTBOUND.c.message_id,
                    OUTBOX.c.partner,
                    OUTBOUND.c.body_type,
                    OUTBOX.c.state,
                    OUTBOX.c.attempts,
                    OUTBOX.c.last_error,
                    OUTBOX.c.dead_reason,
                    OUTBOUND.c.created_at,
                    OUTBOX.c.next_attempt_at,
                )
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .order_by(OUTBOX.c.id)
            )
            async with self.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            out = []
            for r in rows:
                state = r[3]
                if state == QUEUED and r[4] > 0:
                    state = "retrying"
                reason = (r[6] if r[3] == DEAD else r[5]) or ""
                out.append(
                    OutboxRow(r[0], r[1], r[2], state, r[4], reason, as_utc(r[7]), as_utc(r[8]))
                )
            return out

        return await self._run(work)

    async def dead_letters(
        self, message_id: str | None = None, partner: str | None = None
    ) -> list[OutboundMessage]:
        async def work() -> list[OutboundMessage]:
            async with self.session() as s:
                query = (
                    select(OutboundMessage)
                    .join(OutboxEntry, col(OutboxEntry.outbound_id) == OutboundMessage.id)
                    .where(OutboxEntry.state == DEAD)
                    .order_by(col(OutboxEntry.id))
                )
                if message_id is not None:
                    query = query.where(OutboundMessage.message_id == message_id)
                if partner is not None:
                    query = query.where(OutboxEntry.partner == partner)
                return list((await s.exec(query)).all())

        return await self._run(work)

    async def requeue(self, message_ids: Sequence[str], now: datetime) -> int:
        """Put dead letters back in the queue as they are (their envelopes still valid)."""

        async def work() -> int:
            async with self.writing() as conn:
                ids = await self._dead_outbound_ids(conn, message_ids)
                if not ids:
                    return 0
                await conn.execute(
                    update(OUTBOX)
                    .where(OUTBOX.c.outbound_id.in_(ids))
                    .values(state=QUEUED, dead_reason=None, next_attempt_at=now, attempts=0)
                )
                await conn.execute(
                    update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=QUEUED)
                )
                return len(ids)

        return await self._run(work)

    async def replace(self, replaced: Sequence[str], replacements: Sequence[NewOutbound]) -> None:
        """Settle dead letters as "replaced" and queue the new messages that replace them."""

        def work(conn: Connection) -> None:
            ids = [
                r[0]
                for r in conn.execute(
                    core_select(OUTBOUND.c.id)
                    .join(OUTBOX, OUTBOX.c.outbound_id == OUTBOUND.c.id)
                    .where(OUTBOX.c.state == DEAD, OUTBOUND.c.message_id.in_(list(replaced)))
                ).all()
            ]
            if len(ids) != len(replaced):
                raise StoreError("a dead letter to replace is no longer dead")
            conn.execute(delete(OUTBOX).where(OUTBOX.c.outbound_id.in_(ids)))
            conn.execute(update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status="replaced"))
            self._enqueue(conn, replacements)
            self._append_trail(conn, [_queued_event(m) for m in replacements])

        await self._run(lambda: self.transaction(work))

    async def drop(self, message_ids: Sequence[str], reason: str) -> int:
        """Remove dead letters from the outbox for good (the message stays, as "dead")."""

        async def work() -> int:
            async with self.writing() as conn:
                ids = await self._dead_outbound_ids(conn, message_ids)
                if ids:
                    await conn.execute(delete(OUTBOX).where(OUTBOX.c.outbound_id.in_(ids)))
                    await conn.execute(
                        update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=DEAD)
                    )
                return len(ids)

        del reason  # recorded in the trail by the caller (issue 5)
        return await self._run(work)

    async def _dead_outbound_ids(
        self, conn: AsyncConnection, message_ids: Sequence[str]
    ) -> list[int]:
        result = await conn.execute(
            core_select(OUTBOUND.c.id)
            .join(OUTBOX, OUTBOX.c.outbound_id == OUTBOUND.c.id)
            .where(OUTBOX.c.state == DEAD, OUTBOUND.c.message_id.in_(list(message_ids)))
        )
        return [r[0] for r in result.all()]

    # --- inbound ---------------------------------------------------------------------------

    async def accept_inbound(
        self,
        incoming: Sequence[Incoming],
        sign: Callable[[list[InboundRow]], list[bytes]],
    ) -> list[Accepted]:
        """Insert inbound messages with their signed receipts, in one transaction.

        A message whose sender and id were accepted before (earlier, or earlier in the same
        call) is not inserted again: its outcome names the earlier row. ``sign`` gets the new
        rows after they are known to be new and before the commit, so a receipt is never signed
        for what is not being persisted and is stored with what it acknowledges. Revisions:
        a message whose state (``Incoming.state``) is not newer than the state held is stored
        as ``superseded`` and leaves the state alone.
        """

        def work(conn: Connection) -> list[Accepted]:
            self._serialise_inbound(conn)
            earlier = self._earlier_inbound(conn, incoming)
            outcomes: list[Accepted | None] = []
            fresh: list[Incoming] = []
            again: list[trail.Event] = []
            first_in_call: dict[tuple[str, str], InboundRow] = {}
            for item in incoming:
                key = (item.row.sender, item.row.message_id)
                found = earlier.get(key) or first_in_call.get(key)
                if found is not None:
                    outcomes.append(Accepted(False, found))
                    if found.envelope_digest == item.row.envelope_digest:
                        again.append(_inbound_event("duplicate", item))
                    continue
                first_in_call[key] = item.row
                fresh.append(item)
                outcomes.append(None)
            size = self._trail_size(conn)
            if fresh:
                self._apply_revisions(conn, fresh)
                rows = [item.row for item in fresh]
                for i, row in enumerate(rows):
                    row.trail_index = size + i  # the receipt names its "received" leaf
                for row, receipt in zip(rows, sign(rows), strict=True):
                    row.signed_receipt = receipt
                self._sql.insert_inbound(conn, self._sql.insert_inbound.rows(rows))
            received = [_inbound_event("received", item) for item in fresh]
            self._append_trail(conn, received + again, size)
            return [
                outcome if outcome is not None else Accepted(True, item.row)
                for outcome, item in zip(outcomes, incoming, strict=True)
            ]

        return await self._run(lambda: self.transaction(work))

    def _earlier_inbound(
        self, conn: Connection, incoming: Sequence[Incoming]
    ) -> dict[tuple[str, str], InboundRow]:
        ids = list({item.row.message_id for item in incoming})
        found: dict[tuple[str, str], InboundRow] = {}
        for start in range(0, len(ids), 500):
            result = conn.execute(self._sql.earlier_inbound, {"ids": ids[start : start + 500]})
            for r in result.all():
                found[(r[1], r[2])] = InboundRow(
                    id=r[0],
                    sender=r[1],
                    message_id=r[2],
                    envelope_digest=bytes(r[3]),
                    signed_receipt=bytes(r[4]),
                    body_type=r[5],
                    received_at=utcnow(),
                )
        return found

    def _apply_revisions(self, conn: Connection, fresh: Sequence[Incoming]) -> None:
        refs = [item for item in fresh if item.state is not None and item.state.revision > 0]
        if not refs:
            return
        keys = list({item.state.key for item in refs if item.state is not None})
        result = conn.execute(self._sql.held_state, {"keys": keys})
        held = {(r[0], r[1], r[2]): r[3] for r in result.all()}
        changed: dict[tuple[str, str, str], tuple[int, str]] = {}
        for item in refs:
            ref = item.state
            assert ref is not None  # noqa: S101 - filtered above
            k = (ref.party, ref.kind, ref.key)
            if ref.revision <= held.get(k, 0):
                item.row.superseded = True
                continue
            held[k] = ref.revision
            changed[k] = (ref.revision, item.row.message_id)
        if not changed:
            return
        conn.execute(
            self._sql.upsert_state,
            [
                {
                    "party": party,
                    "kind": kind,
                    "key": key,
                    "revision": revision,
                    "message_id": message_id,
                    "updated_at": utcnow(),
                }
                for (party, kind, key), (revision, message_id) in changed.items()
            ],
        )

    def _serialise_inbound(self, conn: Connection) -> None:
        """Make inbound ids (the subscribers' cursor) visible in the order they were assigned.

        PostgreSQL hands out serial ids at insert time; two concurrent transactions could commit
        11 before 10, and a subscriber that read 11 would move its cursor past 10 for ever. A
        transaction-scoped advisory lock serialises inbound inserts so ids commit in order
        (and makes the duplicate check and the insert atomic across replicas). SQLite
        serialises writers by itself (BEGIN IMMEDIATE).
        """
        if not self.is_sqlite:
            conn.execute(self._sql.inbound_lock)

    # --- the trail ---------------------------------------------------------------------------

    def _trail_size(self, conn: Connection) -> int:
        """The trail's size, for a transaction about to append: on PostgreSQL it first takes
        the trail lock, so one transaction at a time sequences the trail (SQLite's write lock
        does that by itself)."""
        if not self.is_sqlite:
            conn.execute(self._sql.trail_lock)
        return int(conn.execute(self._sql.trail_size).scalar_one())

    def _append_trail(
        self, conn: Connection, events: Sequence[trail.Event], size: int | None = None
    ) -> int:
        """Append one leaf per event, in order, with the tree nodes they complete; returns the
        index of the first. ``size`` is what ``_trail_size`` answered in this transaction."""
        if size is None:
            size = self._trail_size(conn)
        if not events:
            return size
        leaves = [trail.encode(e) for e in events]
        frontier = self._read_nodes(conn, treestore.frontier_keys(size))
        nodes = treestore.append_many(size, [leaf.hash for leaf in leaves], frontier)
        sql = self._sql
        time = sql.insert_trail.time
        sql.insert_trail(
            conn,
            [
                (
                    size + i,
                    leaf.event.kind,
                    time(leaf.event.at),
                    leaf.event.message_id,
                    leaf.event.correlation_id,
                    leaf.event.sender,
                    leaf.event.recipient,
                    leaf.event.body_type,
                    leaf.data,
                    leaf.hash,
                )
                for i, leaf in enumerate(leaves)
            ],
        )
        sql.insert_trail_key(
            conn,
            [
                (name, value[:512], size + i)
                for i, leaf in enumerate(leaves)
                for name, values in leaf.event.keys.items()
                for value in dict.fromkeys(values)
            ],
        )
        # leaf hashes (level 0) are in their entries
        sql.insert_trail_node(conn, [node for node in nodes if node[0] > 0])
        return size

    def _read_nodes(
        self, conn: Connection, keys: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """Tree nodes by (level, index): leaf hashes from trail_entry, the rest from
        trail_node, in at most two queries."""
        found: dict[tuple[int, int], bytes] = {}
        leaves = [index for level, index in keys if level == 0]
        inner = [key for key in keys if key[0] > 0]
        if leaves:
            for index, value in conn.execute(self._sql.trail_leaf_hashes, {"indexes": leaves}):
                found[(0, index)] = bytes(value)
        if inner:
            for level, index, value in conn.execute(self._sql.trail_nodes, {"keys": inner}):
                found[(level, index)] = bytes(value)
        return found

    async def sign_checkpoint(self, sign: Callable[[int, bytes], bytes]) -> TrailCheckpoint | None:
        """Sign a checkpoint of the trail as it is now, if it grew since the last one; None if
        it did not. ``sign(size, root)`` returns the signed note. The new root must be
        consistent with the last signed one (a consistency proof from the stored tree that
        verifies), or nothing is signed: the hub never signs two inconsistent checkpoints."""

        def work(conn: Connection) -> TrailCheckpoint | None:
            size = self._trail_size(conn)  # on PostgreSQL, appends wait until this is done
            last = conn.execute(
                core_select(CHECKPOINT.c.size, CHECKPOINT.c.root)
                .order_by(CHECKPOINT.c.size.desc())
                .limit(1)
            ).first()
            old_size, old_root = (last[0], bytes(last[1])) if last else (0, b"")
            if size == old_size:
                return None
            keys = treestore.root_keys(size)
            if old_size:
                keys = keys + treestore.consistency_keys(old_size, size)
            nodes = self._read_nodes(conn, list(dict.fromkeys(keys)))
            root = treestore.tree_root(size, nodes)
            if old_size:
                proof = treestore.consistency_proof(old_size, size, nodes)
                if not merkle.verify_consistency(old_size, size, old_root, root, proof):
                    raise StoreError(
                        f"the trail at {size} entries is not consistent with the checkpoint "
                        f"signed at {old_size}; no checkpoint signed",
                        reason="trail-inconsistent",
                    )
            checkpoint = TrailCheckpoint(
                size=size, root=root, note=sign(size, root), signed_at=utcnow()
            )
            conn.execute(
                insert(CHECKPOINT), [_row(checkpoint, ("size", "root", "note", "signed_at"))]
            )
            return checkpoint

        return await self._run(lambda: self.transaction(work))

    async def record_config(self, digest: bytes, at: datetime, detail: str) -> bool:
        """Append a "config-changed" leaf unless the last one names the same digest; True if
        one was appended."""

        def work(conn: Connection) -> bool:
            size = self._trail_size(conn)
            last = conn.execute(
                core_select(TRAIL.c.leaf)
                .where(TRAIL.c.kind == "config-changed")
                .order_by(TRAIL.c.idx.desc())
                .limit(1)
            ).scalar()
            if last is not None and trail.decode(bytes(last)).config_digest == digest:
                return False
            event = trail.Event("config-changed", at, config_digest=digest, detail=detail[:300])
            self._append_trail(conn, [event], size)
            return True

        return await self._run(lambda: self.transaction(work))

    async def checkpoints(self) -> list[TrailCheckpoint]:
        async def work() -> list[TrailCheckpoint]:
            async with self.session() as s:
                query = select(TrailCheckpoint).order_by(col(TrailCheckpoint.size))
                return list((await s.exec(query)).all())

        return await self._run(work)

    async def trail_size(self) -> int:
        async def work() -> int:
            async with self.engine.connect() as conn:
                return int((await conn.execute(self._sql.trail_size)).scalar_one())

        return await self._run(work)

    async def trail_leaves(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """The stored leaves with index in [start, end), in order."""

        async def work() -> list[bytes]:
            query = core_select(TRAIL.c.leaf).where(TRAIL.c.idx >= start).order_by(TRAIL.c.idx)
            if end is not None:
                query = query.where(TRAIL.c.idx < end)
            async with self.engine.connect() as conn:
                return [bytes(r[0]) for r in await conn.execute(query)]

        return await self._run(work)

    async def trail_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored tree nodes by (level, index), fetched in one query (hub/treestore.py names
        the ones a root or proof needs)."""

        async def work() -> dict[tuple[int, int], bytes]:
            if not keys:
                return {}
            async with self.engine.connect() as conn:
                return await conn.run_sync(self._read_nodes, keys)

        return await self._run(work)

    async def trail_root(self, size: int) -> bytes:
        return treestore.tree_root(size, await self.trail_nodes(treestore.root_keys(size)))

    async def trail_inclusion(self, index: int, size: int) -> list[bytes]:
        nodes = await self.trail_nodes(treestore.inclusion_keys(index, size))
        return treestore.inclusion_proof(index, size, nodes)

    async def trail_consistency(self, old_size: int, new_size: int) -> list[bytes]:
        nodes = await self.trail_nodes(treestore.consistency_keys(old_size, new_size))
        return treestore.consistency_proof(old_size, new_size, nodes)

    async def current_state(self, party: str | None = None) -> list[CurrentState]:
        async def work() -> list[CurrentState]:
            async with self.session() as s:
                query = select(CurrentState).order_by(
                    col(CurrentState.party), col(CurrentState.kind), col(CurrentState.key)
                )
                if party is not None:
                    query = query.where(CurrentState.party == party)
                return list((await s.exec(query)).all())

        return await self._run(work)

    async def find_inbound(self, sender: str, message_id: str) -> InboundMessage | None:
        async def work() -> InboundMessage | None:
            async with self.session() as s:
                rows = await s.exec(
                    select(InboundMessage).where(
                        InboundMessage.sender == sender, InboundMessage.message_id == message_id
                    )
                )
                return rows.first()

        return await self._run(work)

    async def inbound_after(self, cursor: int, limit: int) -> list[InboundMessage]:
        async def work() -> list[InboundMessage]:
            async with self.session() as s:
                rows = await s.exec(
                    select(InboundMessage)
                    .where(col(InboundMessage.id) > cursor)
                    .order_by(col(InboundMessage.id))
                    .limit(limit)
                )
                return list(rows.all())

        return await self._run(work)

    async def acknowledged(self, subscriber: str) -> int:
        async def work() -> int:
            async with self.session() as s:
                row = await s.get(SubscriberCursor, subscriber)
                return row.acknowledged if row else 0

        return await self._run(work)

    async def acknowledge(self, subscriber: str, cursor: int) -> int:
        """Move a subscriber's cursor forward (never back, never past the newest inbound
        message, so a mistaken acknowledgement cannot skip what has not arrived yet); returns
        the cursor now stored. Each message newly acknowledged gets its "handed-over" leaf."""
        cursors = _table("subscriber_cursor")

        def work(conn: Connection) -> int:
            # first, so that acknowledgements of one subscriber are serialised (PostgreSQL)
            size = self._trail_size(conn)
            newest = conn.execute(core_select(func.max(INBOUND.c.id))).scalar() or 0
            bounded = min(cursor, newest)
            held = conn.execute(
                core_select(cursors.c.acknowledged).where(cursors.c.subscriber == subscriber)
            ).scalar()
            if held is not None and bounded <= held:
                return int(held)
            now = utcnow()
            if held is None:
                conn.execute(
                    insert(cursors),
                    [{"subscriber": subscriber, "acknowledged": bounded, "updated_at": now}],
                )
            else:
                conn.execute(
                    update(cursors)
                    .where(cursors.c.subscriber == subscriber)
                    .values(acknowledged=bounded, updated_at=now)
                )
            handed = conn.execute(
                core_select(INBOUND.c.message_id, INBOUND.c.sender, INBOUND.c.body_type)
                .where(INBOUND.c.id > (held or 0), INBOUND.c.id <= bounded)
                .order_by(INBOUND.c.id)
            ).all()
            self._append_trail(
                conn,
                [
                    trail.Event(
                        "handed-over",
                        now,
                        message_id=r[0],
                        sender=r[1],
                        recipient=subscriber[:128],
                        body_type=r[2],
                    )
                    for r in handed
                ],
                size,
            )
            return bounded

        return await self._run(lambda: self.transaction(work))

    async def record_rejection(self, rejection: Rejection) -> None:
        await self.record_rejections([rejection])

    async def record_rejections(self, rejections: Sequence[Rejection]) -> None:
        """Record refusals, each with its "rejected" leaf."""

        def work(conn: Connection) -> None:
            conn.execute(insert(REJECTION), [_row(r, REJECTION_COLUMNS) for r in rejections])
            self._append_trail(conn, [_rejected_event(r) for r in rejections])

        if rejections:
            await self._run(lambda: self.transaction(work))

    # --- reading, for the CLI and tests ----------------------------------------------------

    async def rejections(self) -> list[Rejection]:
        async def work() -> list[Rejection]:
            async with self.session() as s:
                return list((await s.exec(select(Rejection).order_by(col(Rejection.id)))).all())

        return await self._run(work)

    async def inbound(self) -> list[InboundMessage]:
        return await self.inbound_after(0, 1_000_000)

    async def outbound(self) -> list[tuple[OutboundMessage, ReceiptRecord | None]]:
        async def work() -> list[tuple[OutboundMessage, ReceiptRecord | None]]:
            async with self.session() as s:
                rows = await s.exec(
                    select(OutboundMessage, ReceiptRecord)
                    .join(
                        ReceiptRecord,
                        col(ReceiptRecord.message_id) == OutboundMessage.message_id,
                        isouter=True,
                    )
                    .order_by(col(OutboundMessage.id))
                )
                return list(rows.all())

        return await self._run(work)

    async def outbox(self) -> list[OutboxEntry]:
        async def work() -> list[OutboxEntry]:
            async with self.session() as s:
                return list((await s.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all())

        return await self._run(work)

    async def message_rows(self) -> list[MessageRow]:
        rows: list[MessageRow] = []
        for m, r in await self.outbound():
            rows.append(
                MessageRow(
                    "out",
                    m.message_id,
                    m.body_type,
                    m.recipient,
                    m.status,
                    r.outcome if r else "-",
                    json.loads(m.business_keys),
                    as_utc(m.created_at),
                )
            )
        for i in await self.inbound():
            rows.append(
                MessageRow(
                    "in",
                    i.message_id,
                    i.body_type,
                    i.sender,
                    "superseded" if i.superseded else "accepted",
                    "sent",
                    json.loads(i.business_keys),
                    as_utc(i.received_at),
                )
            )
        rows.sort(key=lambda row: row.at)
        return rows


# --- trail events for what the store records (docs/trail.md) --------------------------------


def _business_keys(text: str) -> dict[str, list[str]]:
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(v) for v in vs] for k, vs in value.items() if isinstance(vs, list)}


def _inbound_event(kind: str, item: Incoming) -> trail.Event:
    row = item.row
    return trail.Event(
        kind,
        row.received_at,
        message_id=row.message_id,
        correlation_id=row.correlation_id,
        sender=row.sender,
        body_type=row.body_type,
        envelope_digest=row.envelope_digest,
        keys=_business_keys(row.business_keys),
        revision=item.state.revision if item.state is not None else 0,
    )


def _queued_event(message: NewOutbound | OutboundMessage) -> trail.Event:
    return trail.Event(
        "queued",
        message.created_at,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        recipient=message.recipient,
        body_type=message.body_type,
        envelope_digest=message.envelope_digest,
        document_digest=message.document_digest or b"",
        keys=_business_keys(message.business_keys),
    )


def _settled_event(settlement: Settlement) -> trail.Event:
    receipt = settlement.receipt
    dead = settlement.dead_reason is not None
    return trail.Event(
        "dead-lettered" if dead else "delivered",
        receipt.received_at,
        message_id=receipt.message_id,
        recipient=receipt.receiver,
        envelope_digest=receipt.envelope_digest,
        outcome=receipt.outcome,
        reason=receipt.reason,
        detail=(settlement.dead_reason or "")[:300],
    )


def _rejected_event(rejection: Rejection) -> trail.Event:
    digest = rejection.digest or b""
    domestic = rejection.source == "domestic"
    return trail.Event(
        "rejected",
        rejection.at,
        message_id=rejection.message_id,
        sender=rejection.source,
        reason=rejection.reason,
        detail=rejection.detail[:300],
        envelope_digest=b"" if domestic else digest,
        document_digest=digest if domestic else b"",
    )
