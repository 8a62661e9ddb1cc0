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
import contextlib
import json
import sqlite3
import time
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
    Integer,
    LargeBinary,
    Table,
    UniqueConstraint,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    text,
    update,
)
from sqlalchemy import select as core_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.core.envelope import RAW_BODY_TYPE
from hub.core.errors import StoreDataError, StoreError
from hub.core.outbox import Outbound, move
from hub.store import rawsql
from hub.store.rawsql import Raw, TrailTail, Tx
from hub.trail import events as trail
from hub.trail import merkle
from hub.trail import tree as treestore

T = TypeVar("T")

# Advisory lock key for inbound inserts (PostgreSQL): "CHUBINBD" as a 64-bit integer.
INBOUND_LOCK = int.from_bytes(b"CHUBINBD", "big") & 0x7FFFFFFFFFFFFFFF
# ... and for trail appends: one transaction at a time sequences the trail.
TRAIL_LOCK = int.from_bytes(b"CHUBTRAL", "big") & 0x7FFFFFFFFFFFFFFF

QUEUED, DEAD = "queued", "dead"

# How long a write waits for SQLite's write lock held by another process (an operator's
# command) before it fails with "store-busy": the same as the readers' busy_timeout.
BUSY_SECONDS = 10.0
# SQLite's log is copied into the database as it grows, and started afresh once it holds this
# many pages (8 MiB of 4 KiB pages): large enough that pages written again and again (the
# newest rows, index tails) are copied once per restart, small enough to stay in the cache.
WAL_RESTART_PAGES = 2000


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


# Trail indexes, sizes and node keys go past 2^31: 64 bits on PostgreSQL; on SQLite, the
# column must be spelled INTEGER to be the table's rowid (one b-tree, appended to in order).
TRAIL_INDEX = BigInteger().with_variant(Integer, "sqlite")


class OutboundMessage(SQLModel, table=True):
    """A message this hub signed for a partner. Never deleted; its status changes.

    Indexed only by what looks messages up (id, message id): every index is one more page
    written per message, and recipient, status and submission id are only ever read back
    with the row."""

    __tablename__ = "outbound_message"
    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(max_length=36, unique=True)
    correlation_id: str = Field(default="", max_length=128)
    recipient: str = Field(max_length=16)
    body_type: str = Field(max_length=128)
    envelope: bytes = _blob()
    envelope_digest: bytes = _blob()
    document_digest: bytes | None = _blob(nullable=True)  # original domestic document, if any
    business_keys: str = Field(default="{}")  # JSON object: name -> list of values
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    submission_id: str | None = Field(default=None, max_length=128)
    # queued -> delivered | rejected (by the partner) | dead (expired, dropped) | replaced
    # (an operator retried it as a new message)
    status: str = Field(default=QUEUED, max_length=16)


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


class InboundOriginal(SQLModel, table=True):
    """The document a partner sent in a partner format (a RawDocument body), kept exactly as
    signed, beside its inbound message, whose body is the protobuf translated on ingress."""

    __tablename__ = "inbound_original"
    sender: str = Field(max_length=16, primary_key=True)
    message_id: str = Field(max_length=36, primary_key=True)
    format: str = Field(max_length=64)
    document_digest: bytes = _blob()  # SHA-256 of the document's bytes (RawDocument.content)
    body: bytes = _blob()  # the exact signed body: the serialised RawDocument


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
    idx: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    kind: str = Field(max_length=32)
    at: datetime = _ts()
    message_id: str = Field(default="", max_length=64, index=True)
    correlation_id: str = Field(default="", max_length=128)
    sender: str = Field(default="", max_length=128)
    recipient: str = Field(default="", max_length=128)
    body_type: str = Field(default="", max_length=128)
    leaf: bytes = _blob()
    leaf_hash: bytes = _blob()  # the tree's level-0 node (hub/trail/tree.py), kept in this row


class TrailKey(SQLModel, table=True):
    """A business key named by a trail entry (LRN, MRN, container id, AEO id ...)."""

    __tablename__ = "trail_key"
    __table_args__ = {"sqlite_with_rowid": False}  # the key is the row: one b-tree, not two
    name: str = Field(primary_key=True, max_length=16)
    value: str = Field(primary_key=True, max_length=512)
    idx: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )


class TrailNode(SQLModel, table=True):
    """The hash of a perfect subtree of the trail, level 1 and up (level 0, the leaf hashes,
    are in trail_entry). Written once, when the subtree is complete; proofs are read from
    these (hub/trail/tree.py).

    ``key`` is ``node_key(level, index)``: where the subtree ends, then its level. The nodes an
    append completes all end at or near the new size, so each commit's nodes are appended
    together at the end of one rowid b-tree, which SQLite grows by adding a page. Keyed by
    (level, index) they were one page per level, rewritten at every commit."""

    __tablename__ = "trail_node"
    key: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    hash: bytes = _blob()


# A trail node's key: the end of its leaf range (up to 2^57 leaves), then its level (< 64).
NODE_LEVEL_BITS = 6
MAX_STORED_TRAIL = 1 << (63 - NODE_LEVEL_BITS)


def node_key(level: int, index: int) -> int:
    return (((index + 1) << level) << NODE_LEVEL_BITS) | level


def node_of(key: int) -> tuple[int, int]:
    level = key & ((1 << NODE_LEVEL_BITS) - 1)
    return level, ((key >> NODE_LEVEL_BITS) >> level) - 1


class TrailCheckpoint(SQLModel, table=True):
    """A checkpoint the hub signed: the trail's size and root, and the signed note."""

    __tablename__ = "trail_checkpoint"
    size: int = Field(
        primary_key=True, sa_type=TRAIL_INDEX, sa_column_kwargs={"autoincrement": False}
    )
    root: bytes = _blob()
    note: bytes = _blob()
    signed_at: datetime = _ts()


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


OUTBOUND = _table("outbound_message")
OUTBOX = _table("outbox")
RECEIPT = _table("receipt")
INBOUND = _table("inbound_message")
ORIGINAL = _table("inbound_original")
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
    # A document in a partner format (a RawDocument body): ``body`` is its translation and
    # these keep what was signed (stored in inbound_original)
    original_format: str = ""
    original_body: bytes = b""
    document_digest: bytes = b""

    def signed_the_same(self, other: InboundRow) -> bool:
        """Whether ``other`` carries what this row's sender signed (``signed_alike``)."""
        return signed_alike(
            (self.envelope_digest, self.header), (other.envelope_digest, other.header)
        )


def signed_alike(a: tuple[bytes, bytes], b: tuple[bytes, bytes]) -> bool:
    """Whether two verified envelopes, each as (envelope digest, signed header bytes), carry
    what one sender signed once: the same envelope, or the same signed header under other
    signature bytes (a partner that signs again when it resends, or an ECDSA signature
    re-encoded as (r, n - s)). The header names the body's digest, and both bodies were
    checked against it, so the same header is the same body."""
    return a[0] == b[0] or (bool(a[1]) and a[1] == b[1])


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
    # repeated in the trail's delivered / dead-lettered entry, so auditors find it by them
    correlation_id: str = ""
    body_type: str = ""
    business_keys: str = "{}"


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
class TrailQuery:
    """An auditor's filters on the trail: every one given must match. ``visible`` restricts
    to entries whose sender or recipient is one of those parties (a token's restriction)."""

    since: datetime | None = None
    until: datetime | None = None
    party: str = ""
    body_type: str = ""
    message_id: str = ""
    correlation_id: str = ""
    key: tuple[str, str] | None = None
    kinds: tuple[str, ...] = ()
    visible: frozenset[str] | None = None
    oldest_first: bool = False
    after: int | None = None  # the last index of the previous page
    limit: int = 100


@dataclass(frozen=True)
class StoredMessage:
    """A message's exact signed bytes, for auditors allowed to read them."""

    message_id: str
    direction: str
    partner: str
    body_type: str
    envelope_digest: bytes
    envelope: bytes = b""  # outbound
    header: bytes = b""  # inbound
    body: bytes = b""


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
    # for the copy and its fsync): the hub copies the log beside its writers (Store.copy_wal)
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
    # event loop: Store._begin_writing waits for the lock asynchronously instead.
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _copy_wal_on_thread(conn: Connection) -> None:
    conn.connection.dbapi_connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # type: ignore[union-attr]


def _commit_on_thread(conn: Connection) -> None:
    conn.connection.dbapi_connection.commit()  # type: ignore[union-attr]
    if conn.in_transaction():  # Core statements began SQLAlchemy's side of it: end that too
        conn.commit()


def _utc_time(value: datetime) -> datetime:
    return value if value.tzinfo is UTC else as_utc(value).astimezone(UTC)


def _sqlite_time(value: datetime) -> str:
    """A datetime as SQLAlchemy's SQLite DateTime stores it (``YYYY-MM-DD HH:MM:SS.ffffff``,
    UTC), so Core and ORM reads agree."""
    return _utc_time(value).replace(tzinfo=None).isoformat(" ", "microseconds")


# The hot paths build their rows as tuples in these column orders.
OUTBOUND_INSERT = (
    "id",
    "message_id",
    "correlation_id",
    "recipient",
    "body_type",
    "envelope",
    "envelope_digest",
    "document_digest",
    "business_keys",
    "created_at",
    "expires_at",
    "submission_id",
    "status",
)
OUTBOX_INSERT = (
    "id",
    "outbound_id",
    "partner",
    "state",
    "next_attempt_at",
    "expires_at",
    "attempts",
)
INBOUND_INSERT = (
    "message_id",
    "sender",
    "correlation_id",
    "body_type",
    "header",
    "body",
    "envelope_digest",
    "business_keys",
    "received_at",
    "signed_receipt",
    "superseded",
)
RECEIPT_INSERT = (
    "message_id",
    "receiver",
    "outcome",
    "reason",
    "envelope_digest",
    "signed_receipt",
    "received_at",
)
TRAIL_INSERT = (
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
)


class _Statements:
    """The statements every message takes, as plain SQL (hub/store/rawsql.py), written once. The
    text is made of names and placeholders only (the S608 exemptions below); values always
    travel as parameters."""

    def __init__(self, is_sqlite: bool) -> None:
        ins = rawsql.insert
        self.insert_outbound = ins("outbound_message", OUTBOUND_INSERT)
        self.insert_outbox = ins("outbox", OUTBOX_INSERT)
        self.insert_submission = ins("submission", ("submission_id", "response", "created_at"))
        self.insert_receipt = ins("receipt", RECEIPT_INSERT, " ON CONFLICT DO NOTHING")
        self.insert_inbound = ins("inbound_message", INBOUND_INSERT)
        self.insert_original = ins(
            "inbound_original", ("sender", "message_id", "format", "document_digest", "body")
        )
        self.insert_trail = ins("trail_entry", TRAIL_INSERT)
        self.insert_trail_key = ins("trail_key", ("name", "value", "idx"))
        self.insert_trail_node = ins("trail_node", ("key", "hash"))
        self.upsert_state = ins(
            "current_state",
            ("party", "kind", "key", "revision", "message_id", "updated_at"),
            " ON CONFLICT (party, kind, key) DO UPDATE SET revision = excluded.revision,"
            " message_id = excluded.message_id, updated_at = excluded.updated_at",
        )
        # a receipt settles a message whatever its status (hub/core/outbox.py)
        self.set_outbound_status = "UPDATE outbound_message SET status = ? WHERE id = ?"
        # entries are named by their id and their message, so a settlement that arrives late
        # can only ever touch its own entry
        self.delete_entry = "DELETE FROM outbox WHERE id = ? AND outbound_id = ?"
        self.dead_entry = (
            "UPDATE outbox SET state = 'dead', dead_reason = ? WHERE id = ? AND outbound_id = ?"
        )
        self.trail_size = "SELECT coalesce(max(idx) + 1, 0) FROM trail_entry"
        if is_sqlite:
            # ids are taken inside the transaction that holds SQLite's write lock; the outbox's
            # AUTOINCREMENT counter never goes back, so neither do its ids
            self.next_outbound_id = "SELECT coalesce(max(id), 0) + 1 FROM outbound_message"
            self.next_outbox_id = (
                "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'outbox'), 0),"
                " coalesce((SELECT max(id) FROM outbox), 0)) + 1"
            )
            self.outbound_ids = self.outbox_ids = ""
        else:
            self.next_outbound_id = self.next_outbox_id = ""
            self.outbound_ids = (
                "SELECT nextval(pg_get_serial_sequence('outbound_message', 'id'))"
                " FROM generate_series(1, ?)"
            )
            self.outbox_ids = (
                "SELECT nextval(pg_get_serial_sequence('outbox', 'id')) FROM generate_series(1, ?)"
            )
        self.inbound_lock = f"SELECT pg_advisory_xact_lock({INBOUND_LOCK})"
        self.trail_lock = f"SELECT pg_advisory_xact_lock({TRAIL_LOCK})"

    @staticmethod
    def earlier_inbound(count: int) -> str:
        columns = "id, sender, message_id, envelope_digest, signed_receipt, body_type, header"
        marks = rawsql.marks(count)
        return f"SELECT {columns} FROM inbound_message WHERE message_id IN ({marks})"  # noqa: S608

    @staticmethod
    def held_state(count: int) -> str:
        keyed = rawsql.any_of("party = ? AND kind = ? AND key = ?", count)
        return f"SELECT party, kind, key, revision FROM current_state WHERE {keyed}"  # noqa: S608

    @staticmethod
    def trail_nodes(count: int) -> str:
        marks = rawsql.marks(count)
        return f"SELECT key, hash FROM trail_node WHERE key IN ({marks})"  # noqa: S608

    @staticmethod
    def leaf_hashes(count: int) -> str:
        marks = rawsql.marks(count)
        return f"SELECT idx, leaf_hash FROM trail_entry WHERE idx IN ({marks})"  # noqa: S608


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
        self._writer_conn: Connection | None = None
        # the trail as the last committed transaction left it (its size and frontier), so an
        # append reads nothing but the size, which tells whether this is still the tail
        self._tail: TrailTail | None = None
        self._numbered = not self.is_sqlite  # asyncpg takes $1, $2 ...; sqlite3 takes ?
        self._db_errors: tuple[type[BaseException], ...] = (
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
        self._sql = _Statements(self.is_sqlite)
        self._time: Callable[[datetime], Any] = _sqlite_time if self.is_sqlite else _utc_time

    async def create_all(self) -> None:
        await self._run(self._create_all)

    async def _create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

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
        await self.engine.dispose()

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
                row: Any = result.one()  # (busy, pages in the log, pages copied)
            return int(row[1])

        if await self._run(copy) < self.wal_restart_pages:
            return False
        async with self._write_turn:
            conn = self._writer_conn
            if conn is None:
                return False
            try:
                await self._on_writer_thread(_copy_wal_on_thread, conn)
            except self._db_errors as exc:
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
                tx = Tx(conn, self._numbered)
                holder.append(tx)
                return fn(tx)

            async with self.engine.connect() as session, session.begin():
                result = await session.run_sync(run)
            self._keep_tail(holder[0])
            return result
        async with self._write_turn:
            conn = await self._begin_writing()
            try:
                tx = Tx(conn, self._numbered)
                result = fn(tx)
            except BaseException:
                self._abandon(conn)
                raise
            await self._commit(conn)
            self._keep_tail(tx)
            return result

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """``transaction``, with every database failure as a StoreError (for group commits)."""
        return await self._run(lambda: self.transaction(fn))

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
            self._tail = None  # committed, or not: the next append reads the tail again
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
        except self._db_errors:
            self._discard_writer()

    def _discard_writer(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            with contextlib.suppress(*self._db_errors):
                conn.invalidate()
                conn.close()

    def _keep_tail(self, tx: Tx) -> None:
        if tx.tail is not None and tx.tail.frontier is not None:
            self._tail = tx.tail

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

    async def _run(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except StoreError:
            raise
        except self._db_errors as exc:
            if _refuses_data(exc):
                raise StoreDataError(f"the store refused the data: {type(exc).__name__}") from exc
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
        return await self._run(
            lambda: self.transaction(lambda tx: self.enqueue_in(tx, messages, submissions))
        )

    def enqueue_in(
        self,
        tx: Tx,
        messages: Sequence[NewOutbound | OutboundMessage],
        submissions: Sequence[tuple[str, bytes]] = (),
        events: Sequence[trail.Event] = (),
    ) -> list[DueDelivery]:
        """``enqueue``'s work, in a transaction of the caller's (a group commit's); ``events``
        (how the messages came to be: translated, routed) are logged before they are queued."""
        entries = self._enqueue(tx, messages)
        self._append_trail(tx, [*events, *(_queued_event(m) for m in messages)])
        if submissions:
            now = self._time(utcnow())
            tx.many(
                self._sql.insert_submission,
                [(sid, response, now) for sid, response in submissions],
            )
        return entries

    def _ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """``count`` new ids for ``table``, in increasing order, taken in this transaction."""
        sql = self._sql
        if self.is_sqlite:  # the write lock is held: nobody else takes ids meanwhile
            statement = sql.next_outbound_id if table == OUTBOUND.name else sql.next_outbox_id
            first = int(tx.value(statement))
            return list(range(first, first + count))
        statement = sql.outbound_ids if table == OUTBOUND.name else sql.outbox_ids
        return sorted(int(r[0]) for r in tx.rows(statement, (count,)))

    def _enqueue(
        self, tx: Tx, messages: Sequence[NewOutbound | OutboundMessage]
    ) -> list[DueDelivery]:
        if not messages:
            return []
        time = self._time
        outbound_ids = self._ids(tx, OUTBOUND.name, len(messages))
        entry_ids = self._ids(tx, OUTBOX.name, len(messages))
        tx.many(
            self._sql.insert_outbound,
            [
                (
                    oid,
                    m.message_id,
                    m.correlation_id,
                    m.recipient,
                    m.body_type,
                    m.envelope,
                    m.envelope_digest,
                    m.document_digest,
                    m.business_keys,
                    time(m.created_at),
                    time(m.expires_at) if m.expires_at else None,
                    m.submission_id,
                    m.status,
                )
                for oid, m in zip(outbound_ids, messages, strict=True)
            ],
        )
        tx.many(
            self._sql.insert_outbox,
            [
                (
                    eid,
                    oid,
                    m.recipient,
                    QUEUED,
                    time(m.created_at),
                    time(m.expires_at) if m.expires_at else None,
                    0,
                )
                for eid, oid, m in zip(entry_ids, outbound_ids, messages, strict=True)
            ],
        )
        for oid, m in zip(outbound_ids, messages, strict=True):
            m.id = oid
        return [
            DueDelivery(
                eid,
                oid,
                m.message_id,
                m.recipient,
                m.envelope,
                m.envelope_digest,
                0,
                m.expires_at,
                m.correlation_id,
                m.body_type,
                m.business_keys,
            )
            for eid, oid, m in zip(entry_ids, outbound_ids, messages, strict=True)
        ]

    async def submissions(self, submission_ids: Sequence[str]) -> dict[str, bytes]:
        """The answers earlier submissions with these idempotency keys got, by key (one
        query per 500 keys)."""
        if not submission_ids:
            return {}

        async def work() -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            async with self.engine.connect() as conn:
                for part in rawsql.chunks(list(dict.fromkeys(submission_ids)), 500):
                    result = await conn.execute(
                        core_select(SUBMISSION.c.submission_id, SUBMISSION.c.response).where(
                            SUBMISSION.c.submission_id.in_(part)
                        )
                    )
                    found.update((key, bytes(answer)) for key, answer in result)
            return found

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
                    OUTBOUND.c.correlation_id,
                    OUTBOUND.c.body_type,
                    OUTBOUND.c.business_keys,
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
                    r[8],
                    r[9],
                    r[10],
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

    async def record_receipts(self, results: Sequence[Settlement]) -> None:
        """Store partner receipts and settle their outbox entries, in one transaction: a
        delivered message leaves the outbox, a finally rejected one becomes a dead letter."""

        await self._run(lambda: self.transaction(lambda tx: self.settle_in(tx, results)))

    def settle_in(self, tx: Tx, results: Sequence[Settlement]) -> None:
        """``record_receipts``'s work, in a transaction of the caller's (a group commit's)."""
        if not results:
            return
        sql, time = self._sql, self._time
        self._append_trail(tx, [_settled_event(r) for r in results])
        tx.many(
            sql.insert_receipt,
            [
                (
                    r.message_id,
                    r.receiver,
                    r.outcome,
                    r.reason,
                    r.envelope_digest,
                    r.signed_receipt,
                    time(r.received_at),
                )
                for r in (s.receipt for s in results)
            ],
        )
        tx.many(
            sql.set_outbound_status,
            [
                (
                    Outbound.REJECTED if s.receipt.outcome == "rejected" else Outbound.DELIVERED,
                    s.due.outbound_id,
                )
                for s in results
            ],
        )
        tx.many(
            sql.delete_entry,
            [(s.due.entry_id, s.due.outbound_id) for s in results if s.dead_reason is None],
        )
        tx.many(
            sql.dead_entry,
            [
                (s.dead_reason[:1000], s.due.entry_id, s.due.outbound_id)
                for s in results
                if s.dead_reason is not None
            ],
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
            core_select(
                OUTBOUND.c.message_id,
                OUTBOX.c.partner,
                OUTBOUND.c.correlation_id,
                OUTBOUND.c.body_type,
            )
            .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
            .where(OUTBOX.c.id.in_(list(entry_ids)))
            .order_by(OUTBOX.c.id)
        )

        def work(tx: Tx) -> None:
            conn = tx.conn
            now = utcnow()
            events = [
                trail.Event(
                    "delivery-failed",
                    now,
                    message_id=r[0],
                    recipient=r[1],
                    correlation_id=r[2],
                    body_type=r[3],
                    detail=error[:300],
                )
                for r in conn.execute(failed)
            ]
            conn.execute(statement)
            self._append_trail(tx, events)

        await self._run(lambda: self.transaction(work))

    async def expire(self, now: datetime) -> int:
        """Turn queued messages whose envelope has expired into dead letters; returns how many."""

        def work(tx: Tx) -> int:
            conn = tx.conn
            expired = conn.execute(
                core_select(
                    OUTBOX.c.id,
                    OUTBOX.c.outbound_id,
                    OUTBOUND.c.message_id,
                    OUTBOX.c.partner,
                    OUTBOUND.c.correlation_id,
                    OUTBOUND.c.body_type,
                    OUTBOUND.c.business_keys,
                    OUTBOUND.c.status,
                )
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .where(OUTBOX.c.state == QUEUED, OUTBOX.c.expires_at <= now)
                .order_by(OUTBOX.c.id)
                .with_for_update()
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
            for r in expired:
                move(r[7], Outbound.DEAD)
            conn.execute(
                update(OUTBOUND)
                .where(OUTBOUND.c.id.in_([r[1] for r in expired]))
                .values(status=Outbound.DEAD)
            )
            self._append_trail(
                tx,
                [
                    trail.Event(
                        "dead-lettered",
                        now,
                        message_id=r[2],
                        recipient=r[3],
                        correlation_id=r[4],
                        body_type=r[5],
                        keys=_business_keys(r[6]),
                        reason="expired",
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

        def work(tx: Tx) -> int:
            conn = tx.conn
            dead = self._dead_letters(tx, message_ids)
            if not dead:
                return 0
            for r in dead:
                move(r[6], Outbound.QUEUED)
            ids = [r[0] for r in dead]
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.outbound_id.in_(ids))
                .values(state=QUEUED, dead_reason=None, next_attempt_at=now, attempts=0)
            )
            conn.execute(
                update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=Outbound.QUEUED)
            )
            detail = "an operator put it back in the queue"
            self._append_trail(tx, [_operator_event("requeued", r, now, detail) for r in dead])
            return len(ids)

        return await self._run(lambda: self.transaction(work))

    async def replace(self, replaced: Sequence[str], replacements: Sequence[NewOutbound]) -> None:
        """Settle dead letters as "replaced" and queue the new messages that replace them."""

        def work(tx: Tx) -> None:
            conn = tx.conn
            dead = self._dead_letters(tx, replaced)
            if len(dead) != len(replaced):
                raise StoreError("a dead letter to replace is no longer dead")
            for r in dead:
                move(r[6], Outbound.REPLACED)
            ids = [r[0] for r in dead]
            conn.execute(delete(OUTBOX).where(OUTBOX.c.outbound_id.in_(ids)))
            conn.execute(
                update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=Outbound.REPLACED)
            )
            self._enqueue(tx, replacements)
            now = utcnow()
            by_old = dict(zip(replaced, replacements, strict=True))
            self._append_trail(
                tx,
                [
                    _operator_event(
                        "requeued",
                        r,
                        now,
                        f"an operator re-signed it as {by_old[r[1]].message_id}"
                        if r[1] in by_old
                        else "an operator re-signed it",
                    )
                    for r in dead
                ]
                + [_queued_event(m) for m in replacements],
            )

        await self._run(lambda: self.transaction(work))

    async def drop(self, message_ids: Sequence[str], reason: str) -> int:
        """Remove dead letters from the outbox for good (the message stays, as "dead")."""

        def work(tx: Tx) -> int:
            conn = tx.conn
            dead = self._dead_letters(tx, message_ids)
            if dead:
                for r in dead:
                    move(r[6], Outbound.DEAD)
                ids = [r[0] for r in dead]
                conn.execute(delete(OUTBOX).where(OUTBOX.c.outbound_id.in_(ids)))
                conn.execute(
                    update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=Outbound.DEAD)
                )
                now = utcnow()
                self._append_trail(
                    tx, [_operator_event("dropped", r, now, reason[:300]) for r in dead]
                )
            return len(dead)

        return await self._run(lambda: self.transaction(work))

    def _dead_letters(self, tx: Tx, message_ids: Sequence[str]) -> list[Any]:
        """(id, message id, recipient, correlation id, type, keys, status) of these dead
        letters."""
        return list(
            tx.conn.execute(
                core_select(
                    OUTBOUND.c.id,
                    OUTBOUND.c.message_id,
                    OUTBOUND.c.recipient,
                    OUTBOUND.c.correlation_id,
                    OUTBOUND.c.body_type,
                    OUTBOUND.c.business_keys,
                    OUTBOUND.c.status,
                )
                .join(OUTBOX, OUTBOX.c.outbound_id == OUTBOUND.c.id)
                .where(OUTBOX.c.state == DEAD, OUTBOUND.c.message_id.in_(list(message_ids)))
                .order_by(OUTBOUND.c.id)
                # held until the commit: a settlement cannot change them between this read
                # and the update that moves them (PostgreSQL; SQLite has one writer)
                .with_for_update()
            ).all()
        )

    # --- inbound ---------------------------------------------------------------------------

    async def accept_inbound(
        self,
        incoming: Sequence[Incoming],
        sign: Callable[[list[InboundRow], tuple[int, bytes]], list[bytes]],
    ) -> list[Accepted]:
        """Insert inbound messages with their signed receipts, in one transaction.

        A message whose sender and id were accepted before (earlier, or earlier in the same
        call) is not inserted again: its outcome names the earlier row. ``sign`` gets the new
        rows after they are known to be new and before the commit, so a receipt is never signed
        for what is not being persisted and is stored with what it acknowledges. Revisions:
        a message whose state (``Incoming.state``) is not newer than the state held is stored
        as ``superseded`` and leaves the state alone.
        """
        return await self._run(
            lambda: self.transaction(lambda tx: self.accept_in(tx, incoming, sign))
        )

    def accept_in(
        self,
        tx: Tx,
        incoming: Sequence[Incoming],
        sign: Callable[[list[InboundRow], tuple[int, bytes]], list[bytes]],
    ) -> list[Accepted]:
        """``accept_inbound``'s work, in a transaction of the caller's (a group commit's)."""
        self._serialise_inbound(tx)
        earlier = self._earlier_inbound(tx, incoming)
        outcomes: list[Accepted | None] = []
        fresh: list[Incoming] = []
        again: list[trail.Event] = []
        first_in_call: dict[tuple[str, str], InboundRow] = {}
        for item in incoming:
            key = (item.row.sender, item.row.message_id)
            found = earlier.get(key) or first_in_call.get(key)
            if found is not None:
                outcomes.append(Accepted(False, found))
                if found.signed_the_same(item.row):
                    again.append(_inbound_event("duplicate", item))
                continue
            first_in_call[key] = item.row
            fresh.append(item)
            outcomes.append(None)
        size = self._trail_size(tx)
        # the leaves first: each receipt names its "received" leaf and the tree they grow
        received = [_inbound_event("received", item) for item in fresh]
        self._append_trail(tx, received + again)
        if fresh:
            self._apply_revisions(tx, fresh)
            rows = [item.row for item in fresh]
            for i, row in enumerate(rows):
                row.trail_index = size + i
            head = self._tree_head(tx)
            for row, receipt in zip(rows, sign(rows, head), strict=True):
                row.signed_receipt = receipt
            time = self._time
            tx.many(
                self._sql.insert_inbound,
                [
                    (
                        r.message_id,
                        r.sender,
                        r.correlation_id,
                        r.body_type,
                        r.header,
                        r.body,
                        r.envelope_digest,
                        r.business_keys,
                        time(r.received_at),
                        r.signed_receipt,
                        r.superseded,
                    )
                    for r in rows
                ],
            )
            originals = [r for r in rows if r.original_format]
            if originals:
                tx.many(
                    self._sql.insert_original,
                    [
                        (
                            r.sender,
                            r.message_id,
                            r.original_format,
                            r.document_digest,
                            r.original_body,
                        )
                        for r in originals
                    ],
                )
        return [
            outcome if outcome is not None else Accepted(True, item.row)
            for outcome, item in zip(outcomes, incoming, strict=True)
        ]

    def _earlier_inbound(
        self, tx: Tx, incoming: Sequence[Incoming]
    ) -> dict[tuple[str, str], InboundRow]:
        ids = list({item.row.message_id for item in incoming})
        found: dict[tuple[str, str], InboundRow] = {}
        now = utcnow()
        for part in rawsql.chunks(ids, 500):
            for r in tx.rows(self._sql.earlier_inbound(len(part)), part):
                found[(r[1], r[2])] = InboundRow(
                    id=r[0],
                    sender=r[1],
                    message_id=r[2],
                    envelope_digest=bytes(r[3]),
                    signed_receipt=bytes(r[4]),
                    body_type=r[5],
                    header=bytes(r[6]),
                    received_at=now,
                )
        return found

    def _apply_revisions(self, tx: Tx, fresh: Sequence[Incoming]) -> None:
        refs = [item for item in fresh if item.state is not None and item.state.revision > 0]
        if not refs:
            return
        wanted = list({(r.party, r.kind, r.key) for r in (i.state for i in refs) if r is not None})
        held: dict[tuple[str, str, str], int] = {}
        for part in rawsql.chunks(wanted):
            params = [value for key in part for value in key]
            for r in tx.rows(self._sql.held_state(len(part)), params):
                held[(r[0], r[1], r[2])] = int(r[3])
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
        now = self._time(utcnow())
        tx.many(
            self._sql.upsert_state,
            [
                (party, kind, key, revision, message_id, now)
                for (party, kind, key), (revision, message_id) in changed.items()
            ],
        )

    def _serialise_inbound(self, tx: Tx) -> None:
        """Make inbound ids (the subscribers' cursor) visible in the order they were assigned.

        PostgreSQL hands out serial ids at insert time; two concurrent transactions could commit
        11 before 10, and a subscriber that read 11 would move its cursor past 10 for ever. A
        transaction-scoped advisory lock serialises inbound inserts so ids commit in order
        (and makes the duplicate check and the insert atomic across replicas). SQLite
        serialises writers by itself (BEGIN IMMEDIATE).
        """
        if not self.is_sqlite:
            tx.rows(self._sql.inbound_lock)

    # --- the trail ---------------------------------------------------------------------------

    def _trail_size(self, tx: Tx) -> int:
        """The trail's size, for a transaction about to append: on PostgreSQL it first takes
        the trail lock, so one transaction at a time sequences the trail (SQLite's write lock
        does that by itself). The first call in a transaction reads it; later ones follow
        this transaction's own appends."""
        if tx.tail is None:
            if not self.is_sqlite:
                tx.rows(self._sql.trail_lock)
            size = int(tx.value(self._sql.trail_size))
            known = self._tail
            # what the last commit left is still the tail if nobody appended since (another
            # replica on PostgreSQL); the size tells, because the trail only grows
            tx.tail = TrailTail(size, known.frontier if known and known.size == size else None)
        return tx.tail.size

    def _append_trail(self, tx: Tx, events: Sequence[trail.Event]) -> int:
        """Append one leaf per event, in order, with the tree nodes they complete; returns the
        index of the first."""
        size = self._trail_size(tx)
        if not events:
            return size
        assert tx.tail is not None  # noqa: S101 - set by _trail_size
        if size + len(events) > MAX_STORED_TRAIL:
            raise StoreError(f"the trail cannot grow past {MAX_STORED_TRAIL} entries")
        leaves = [trail.encode(e) for e in events]
        frontier = tx.tail.frontier
        if frontier is None:
            frontier = self._read_nodes(tx, treestore.frontier_keys(size))
        nodes = treestore.append_many(size, [leaf.hash for leaf in leaves], frontier)
        sql, time = self._sql, self._time
        tx.many(
            sql.insert_trail,
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
        tx.many(
            sql.insert_trail_key,
            [
                (name, value, size + i)
                for i, leaf in enumerate(leaves)
                for name, values in leaf.event.keys.items()
                # bounded where they come in (hub/core/messages.py); rows stored before that may
                # hold longer ones: cut to the column, each once
                for value in dict.fromkeys(v[:MAX_INDEXED_KEY] for v in values)
            ],
        )
        # leaf hashes (level 0) are in their entries
        tx.many(
            sql.insert_trail_node,
            [(node_key(level, index), value) for level, index, value in nodes if level > 0],
        )
        grown = size + len(leaves)
        made = {(level, index): value for level, index, value in nodes}
        tx.tail = TrailTail(
            grown,
            {key: made.get(key) or frontier[key] for key in treestore.frontier_keys(grown)},
        )
        return size

    async def append_trail(self, events: Sequence[trail.Event]) -> int:
        """Append events in one transaction of their own (events that describe no stored
        data: benchmarks, operators' notes); returns the index of the first."""
        return await self.write(lambda tx: self._append_trail(tx, events))

    def _tree_head(self, tx: Tx) -> tuple[int, bytes]:
        """The size and root of the trail with this transaction's appends so far, from the
        frontier it carries (one hash per set bit of the size)."""
        tail = tx.tail
        if tail is None or tail.frontier is None:
            raise StoreError("no trail append in this transaction yet: no tree head to sign")
        return tail.size, treestore.tree_root(tail.size, tail.frontier)

    def _read_nodes(
        self, raw: Raw, keys: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        """Tree nodes by (level, index): leaf hashes from trail_entry, the rest from
        trail_node, each found through its table's primary key."""
        found: dict[tuple[int, int], bytes] = {}
        leaves = [index for level, index in keys if level == 0]
        inner = [key for key in keys if key[0] > 0]
        for part in rawsql.chunks(leaves):
            for index, value in raw.rows(self._sql.leaf_hashes(len(part)), part):
                found[(0, index)] = bytes(value)
        for part in rawsql.chunks(inner):
            params = [node_key(level, index) for level, index in part]
            for key, value in raw.rows(self._sql.trail_nodes(len(part)), params):
                found[node_of(key)] = bytes(value)
        return found

    async def sign_checkpoint(self, sign: Callable[[int, bytes], bytes]) -> TrailCheckpoint | None:
        """Sign a checkpoint of the trail as it is now, if it grew since the last one; None if
        it did not. ``sign(size, root)`` returns the signed note. The new root must be
        consistent with the last signed one (a consistency proof from the stored tree that
        verifies), or nothing is signed: the hub never signs two inconsistent checkpoints."""

        def work(tx: Tx) -> TrailCheckpoint | None:
            conn = tx.conn
            size = self._trail_size(tx)  # on PostgreSQL, appends wait until this is done
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
            nodes = self._read_nodes(tx, list(dict.fromkeys(keys)))
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

        def work(tx: Tx) -> bool:
            conn = tx.conn
            self._trail_size(tx)  # takes the trail lock on PostgreSQL
            last = conn.execute(
                core_select(TRAIL.c.leaf)
                .where(TRAIL.c.kind == "config-changed")
                .order_by(TRAIL.c.idx.desc())
                .limit(1)
            ).scalar()
            if last is not None and trail.decode(bytes(last)).config_digest == digest:
                return False
            event = trail.Event("config-changed", at, config_digest=digest, detail=detail[:300])
            self._append_trail(tx, [event])
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
                return int((await conn.exec_driver_sql(self._sql.trail_size)).scalar_one())

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

    async def trail_records(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """(index, leaf, stored leaf hash) of the entries with index in [start, end), in
        order: what an export holds (hub/trail/verify.py)."""

        async def work() -> list[tuple[int, bytes, bytes]]:
            query = (
                core_select(TRAIL.c.idx, TRAIL.c.leaf, TRAIL.c.leaf_hash)
                .where(TRAIL.c.idx >= start, TRAIL.c.idx < end)
                .order_by(TRAIL.c.idx)
            )
            async with self.engine.connect() as conn:
                return [(int(i), bytes(leaf), bytes(h)) for i, leaf, h in await conn.execute(query)]

        return await self._run(work)

    async def query_trail(self, query: TrailQuery) -> list[tuple[int, bytes]]:
        """(index, leaf) of the entries matching ``query``, one page, in index order (newest
        first unless ``oldest_first``). Pages are keyed by index, so appends between pages
        neither repeat nor skip an entry."""
        c = TRAIL.c
        statement = core_select(c.idx, c.leaf)
        if query.since is not None:
            statement = statement.where(c.at >= _utc_time(query.since))
        if query.until is not None:
            statement = statement.where(c.at < _utc_time(query.until))
        if query.party:
            statement = statement.where((c.sender == query.party) | (c.recipient == query.party))
        if query.visible is not None:
            parties = sorted(query.visible)
            statement = statement.where(c.sender.in_(parties) | c.recipient.in_(parties))
        for column, value in (
            (c.body_type, query.body_type),
            (c.message_id, query.message_id),
            (c.correlation_id, query.correlation_id),
        ):
            if value:
                statement = statement.where(column == value)
        if query.kinds:
            statement = statement.where(c.kind.in_(query.kinds))
        if query.key is not None:
            name, value = query.key
            statement = statement.where(
                c.idx.in_(
                    core_select(TRAIL_KEY.c.idx).where(
                        TRAIL_KEY.c.name == name, TRAIL_KEY.c.value == value[:512]
                    )
                )
            )
        if query.after is not None:
            statement = statement.where(
                c.idx > query.after if query.oldest_first else c.idx < query.after
            )
        statement = statement.order_by(c.idx if query.oldest_first else c.idx.desc())

        async def work() -> list[tuple[int, bytes]]:
            async with self.engine.connect() as conn:
                rows = await conn.execute(statement.limit(query.limit))
                return [(int(i), bytes(leaf)) for i, leaf in rows]

        return await self._run(work)

    async def trail_entry(self, index: int) -> bytes | None:
        """The leaf at ``index``, or None if there is none."""
        found = await self.trail_records(index, index + 1)
        return found[0][1] if found else None

    async def checkpoint_at(self, size: int | None = None) -> TrailCheckpoint | None:
        """The checkpoint signed at ``size``, or the latest if ``size`` is None."""

        async def work() -> TrailCheckpoint | None:
            async with self.session() as s:
                query = select(TrailCheckpoint)
                if size is None:
                    query = query.order_by(col(TrailCheckpoint.size).desc()).limit(1)
                else:
                    query = query.where(TrailCheckpoint.size == size)
                return (await s.exec(query)).first()

        return await self._run(work)

    async def stored_messages(self, message_id: str) -> list[StoredMessage]:
        """Every message with this id, sent or received, with its exact signed bytes."""

        async def work() -> list[StoredMessage]:
            async with self.engine.connect() as conn:
                out = await conn.execute(
                    core_select(
                        OUTBOUND.c.recipient,
                        OUTBOUND.c.body_type,
                        OUTBOUND.c.envelope_digest,
                        OUTBOUND.c.envelope,
                    ).where(OUTBOUND.c.message_id == message_id)
                )
                found = [
                    StoredMessage(message_id, "outbound", r, t, bytes(d), envelope=bytes(e))
                    for r, t, d, e in out
                ]
                # a partner-format document: the exact signed body, not its translation
                inbound = await conn.execute(
                    core_select(
                        INBOUND.c.sender,
                        # the signed body's type: RawDocument where the original is kept
                        case(
                            (ORIGINAL.c.body.is_not(None), RAW_BODY_TYPE),
                            else_=INBOUND.c.body_type,
                        ),
                        INBOUND.c.envelope_digest,
                        INBOUND.c.header,
                        func.coalesce(ORIGINAL.c.body, INBOUND.c.body),
                    )
                    .select_from(
                        INBOUND.outerjoin(
                            ORIGINAL,
                            (ORIGINAL.c.sender == INBOUND.c.sender)
                            & (ORIGINAL.c.message_id == INBOUND.c.message_id),
                        )
                    )
                    .where(INBOUND.c.message_id == message_id)
                )
                found += [
                    StoredMessage(
                        message_id, "inbound", p, t, bytes(d), header=bytes(h), body=bytes(b)
                    )
                    for p, t, d, h, b in inbound
                ]
                return found

        return await self._run(work)

    async def trail_nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored tree nodes by (level, index), fetched in one query (hub/trail/tree.py names
        the ones a root or proof needs)."""

        async def work() -> dict[tuple[int, int], bytes]:
            if not keys:
                return {}
            async with self.engine.connect() as conn:
                return await conn.run_sync(lambda c: self._read_nodes(Raw(c, self._numbered), keys))

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

        def work(tx: Tx) -> int:
            conn = tx.conn
            # first, so that acknowledgements of one subscriber are serialised (PostgreSQL)
            self._trail_size(tx)
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
                tx,
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
            )
            return bounded

        return await self._run(lambda: self.transaction(work))

    async def record_rejection(self, rejection: Rejection) -> None:
        await self.record_rejections([rejection])

    async def record_rejections(self, rejections: Sequence[Rejection]) -> None:
        """Record refusals, each with its "rejected" leaf."""

        def work(tx: Tx) -> None:
            conn = tx.conn
            conn.execute(insert(REJECTION), [_row(r, REJECTION_COLUMNS) for r in rejections])
            self._append_trail(tx, [_rejected_event(r) for r in rejections])

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


MAX_INDEXED_KEY = 512  # TrailKey.value


def _refuses_data(exc: BaseException) -> bool:
    """Whether a driver's error is about the data written (PEP 249's IntegrityError and
    DataError, by whichever driver or wrapper raised it), not about the store's availability."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"IntegrityError", "DataError"})


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
        document_digest=row.document_digest,
        detail=f"translated from {row.original_format}" if row.original_format else "",
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


def _operator_event(kind: str, row: Any, at: datetime, detail: str) -> trail.Event:
    """A dead letter an operator requeued, re-signed or dropped (row: ``_dead_letters``)."""
    return trail.Event(
        kind,
        at,
        message_id=row[1],
        recipient=row[2],
        correlation_id=row[3],
        body_type=row[4],
        keys=_business_keys(row[5]),
        detail=detail,
    )


def _settled_event(settlement: Settlement) -> trail.Event:
    receipt = settlement.receipt
    dead = settlement.dead_reason is not None
    return trail.Event(
        "dead-lettered" if dead else "delivered",
        receipt.received_at,
        message_id=receipt.message_id,
        correlation_id=settlement.due.correlation_id,
        recipient=receipt.receiver,
        body_type=settlement.due.body_type,
        envelope_digest=receipt.envelope_digest,
        keys=_business_keys(settlement.due.business_keys),
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
