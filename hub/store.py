"""The hub's store: SQLModel tables and the transactions the hub needs.

One class, ``Store``, is the seam: every method is one transaction, and every database failure
leaves it as a ``StoreError``. SQLite (WAL) is the embedded default; PostgreSQL through asyncpg
runs the same code. The store knows nothing of gRPC or signatures; callers hand it values.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Column, DateTime, LargeBinary, UniqueConstraint, event, func
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from hub.errors import StoreError

T = TypeVar("T")

# Advisory lock key for inbound inserts (PostgreSQL): "CHUBINBD" as a 64-bit integer.
INBOUND_LOCK = int.from_bytes(b"CHUBINBD", "big") & 0x7FFFFFFFFFFFFFFF


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything the store writes is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _ts() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False))


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
    # queued -> delivered | rejected (by the partner)
    status: str = Field(default="queued", max_length=16, index=True)


class OutboxEntry(SQLModel, table=True):
    """Work for the delivery worker: one row per outbound message not yet delivered."""

    __tablename__ = "outbox"
    id: int | None = Field(default=None, primary_key=True)
    outbound_id: int = Field(foreign_key="outbound_message.id", unique=True)
    partner: str = Field(max_length=16, index=True)
    next_attempt_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, index=True)
    )
    attempts: int = 0
    last_error: str | None = None


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
    __table_args__ = (UniqueConstraint("sender", "message_id", name="uq_inbound_sender_message"),)
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
    signed_receipt: bytes = _blob()  # what we answered, to answer duplicates consistently


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


@dataclass(frozen=True)
class DueDelivery:
    entry_id: int
    outbound_id: int
    message_id: str
    partner: str
    envelope: bytes
    envelope_digest: bytes
    attempts: int


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


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers (CLI, subscribers) run while the hub writes; synchronous=FULL keeps
    # every acknowledged commit durable across power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url, pool_pre_ping=not url.startswith("sqlite")
        )
        if url.startswith("sqlite"):
            event.listen(self.engine.sync_engine, "connect", _set_sqlite_pragmas)

    async def create_all(self) -> None:
        await self._run(self._create_all)

    async def _create_all(self) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with AsyncSession(self.engine, expire_on_commit=False) as session:
            yield session

    async def _run(self, fn: Callable[[], Awaitable[T]]) -> T:
        try:
            return await fn()
        except StoreError:
            raise
        except (SQLAlchemyError, OSError) as exc:
            raise StoreError(f"store operation failed: {type(exc).__name__}") from exc

    # --- outbound --------------------------------------------------------------------------

    async def enqueue(self, messages: Sequence[OutboundMessage]) -> None:
        """Store outbound messages and their outbox entries in one transaction."""

        async def work() -> None:
            async with self.session() as s:
                s.add_all(messages)
                await s.flush()
                for m in messages:
                    if m.id is None:  # flush assigns ids; anything else is a driver fault
                        raise StoreError("outbound message got no id on insert")
                    s.add(
                        OutboxEntry(
                            outbound_id=m.id, partner=m.recipient, next_attempt_at=m.created_at
                        )
                    )
                await s.commit()

        await self._run(work)

    async def due(self, now: datetime, limit: int) -> list[DueDelivery]:
        async def work() -> list[DueDelivery]:
            async with self.session() as s:
                rows = await s.exec(
                    select(OutboxEntry, OutboundMessage)
                    .join(OutboundMessage, col(OutboundMessage.id) == OutboxEntry.outbound_id)
                    .where(col(OutboxEntry.next_attempt_at) <= now)
                    .order_by(col(OutboxEntry.next_attempt_at), col(OutboxEntry.id))
                    .limit(limit)
                )
                return [
                    DueDelivery(
                        e.id or 0,
                        m.id or 0,
                        m.message_id,
                        e.partner,
                        m.envelope,
                        m.envelope_digest,
                        e.attempts,
                    )
                    for e, m in rows.all()
                ]

        return await self._run(work)

    async def next_due_at(self) -> datetime | None:
        async def work() -> datetime | None:
            async with self.session() as s:
                row = await s.exec(
                    select(OutboxEntry.next_attempt_at)
                    .order_by(col(OutboxEntry.next_attempt_at))
                    .limit(1)
                )
                value = row.first()
                return as_utc(value) if value else None

        return await self._run(work)

    async def record_receipts(self, results: Sequence[tuple[DueDelivery, ReceiptRecord]]) -> None:
        """Store partner receipts and settle their outbox entries, in one transaction."""

        async def work() -> None:
            async with self.session() as s:
                for due, receipt in results:
                    entry = await s.get(OutboxEntry, due.entry_id)
                    if entry is None:
                        continue  # settled by another worker in the meantime
                    message = await s.get(OutboundMessage, due.outbound_id)
                    if message is None:
                        raise StoreError(f"outbound message {due.message_id} vanished")
                    message.status = "rejected" if receipt.outcome == "rejected" else "delivered"
                    s.add(message)
                    s.add(receipt)
                    await s.delete(entry)
                await s.commit()

        await self._run(work)

    async def record_failure(
        self, entry_ids: Sequence[int], error: str, next_attempt_at: datetime
    ) -> None:
        async def work() -> None:
            async with self.session() as s:
                for entry_id in entry_ids:
                    entry = await s.get(OutboxEntry, entry_id)
                    if entry is None:
                        continue
                    entry.attempts += 1
                    entry.last_error = error[:1000]
                    entry.next_attempt_at = next_attempt_at
                    s.add(entry)
                await s.commit()

        await self._run(work)

    # --- inbound ---------------------------------------------------------------------------

    async def accept_inbound(
        self, message: InboundMessage, sign: Callable[[InboundMessage], bytes | Awaitable[bytes]]
    ) -> tuple[bool, InboundMessage]:
        """Insert an inbound message and its signed receipt in one transaction.

        ``sign`` is called after the row is in the transaction (so the receipt is never signed
        for something that is not being persisted) and before the commit (so the receipt is
        stored with it). Returns (True, row) when accepted now, (False, earlier row) when the
        same sender's message id was accepted before.
        """

        async def work() -> tuple[bool, InboundMessage]:
            async with self.session() as s:
                await self._serialise_inbound(s)
                s.add(message)
                try:
                    await s.flush()
                except IntegrityError:
                    await s.rollback()
                    existing = await s.exec(
                        select(InboundMessage).where(
                            InboundMessage.sender == message.sender,
                            InboundMessage.message_id == message.message_id,
                        )
                    )
                    earlier = existing.first()
                    if earlier is None:
                        raise
                    return False, earlier
                signed = sign(message)  # an HSM-backed signer may be asynchronous
                message.signed_receipt = signed if isinstance(signed, bytes) else await signed
                s.add(message)
                await s.commit()
                return True, message

        return await self._run(work)

    async def _serialise_inbound(self, session: AsyncSession) -> None:
        """Make inbound ids (the subscribers' cursor) visible in the order they were assigned.

        PostgreSQL hands out serial ids at insert time; two concurrent transactions could commit
        11 before 10, and a subscriber that read 11 would move its cursor past 10 for ever. A
        transaction-scoped advisory lock serialises inbound inserts so ids commit in order.
        SQLite serialises writers by itself.
        """
        if self.engine.dialect.name == "postgresql":
            await session.exec(select(func.pg_advisory_xact_lock(INBOUND_LOCK)))

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
        the cursor now stored."""

        async def work() -> int:
            async with self.session() as s:
                newest = (await s.exec(select(func.max(InboundMessage.id)))).first() or 0
                bounded = min(cursor, newest)
                row = await s.get(SubscriberCursor, subscriber, with_for_update=True)
                if row is None:
                    row = SubscriberCursor(
                        subscriber=subscriber, acknowledged=bounded, updated_at=utcnow()
                    )
                elif bounded > row.acknowledged:
                    row.acknowledged, row.updated_at = bounded, utcnow()
                s.add(row)
                await s.commit()
                return row.acknowledged

        return await self._run(work)

    async def record_rejection(self, rejection: Rejection) -> None:
        async def work() -> None:
            async with self.session() as s:
                s.add(rejection)
                await s.commit()

        await self._run(work)

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
                    "accepted",
                    "sent",
                    json.loads(i.business_keys),
                    as_utc(i.received_at),
                )
            )
        rows.sort(key=lambda row: row.at)
        return rows
