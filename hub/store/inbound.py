"""Messages partners sent: accepted once (a resend gets the first receipt), the newest revision
of each business key kept, subscribers' cursors, and refusals, each logged in the trail in
the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from sqlalchemy import func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from hub.core.limits import DETAIL_CHARS, ID_CHARS
from hub.core.registry import AeoRecord, ControlRecord
from hub.core.revisions import StateKey, newer_wins
from hub.store import rawsql
from hub.store.engine import Database
from hub.store.rawsql import Tx
from hub.store.registry import Registry
from hub.store.schema import (
    INBOUND,
    INBOUND_WRITER,
    REJECTION,
    REJECTION_COLUMNS,
    Accepted,
    CurrentState,
    InboundMessage,
    InboundRow,
    Incoming,
    Rejection,
    SubscriberCursor,
    business_keys_of,
    table_named,
    utcnow,
    values_of,
)
from hub.store.trail import TrailStore
from hub.trail import events as trail


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
        keys=business_keys_of(row.business_keys),
        revision=item.state.revision if item.state is not None else 0,
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
        detail=rejection.detail[:DETAIL_CHARS],
        envelope_digest=b"" if domestic else digest,
        document_digest=digest if domestic else b"",
    )


# Advisory lock key for inbound inserts (PostgreSQL): "CHUBINBD" as a 64-bit integer.
INBOUND_LOCK = int.from_bytes(b"CHUBINBD", "big") & 0x7FFFFFFFFFFFFFFF


class InboundSql:
    """The inbound tables' statements on the hot path, as plain SQL (hub/store/rawsql.py):
    names and placeholders only; values always travel as parameters."""

    def __init__(self) -> None:
        ins = rawsql.insert
        self.insert_inbound = ins("inbound_message", INBOUND_WRITER.columns)
        self.insert_original = ins(
            "inbound_original", ("sender", "message_id", "format", "document_digest", "body")
        )
        self.upsert_state = ins(
            "current_state",
            ("party", "kind", "key", "revision", "message_id", "updated_at"),
            " ON CONFLICT (party, kind, key) DO UPDATE SET revision = excluded.revision,"
            " message_id = excluded.message_id, updated_at = excluded.updated_at",
        )
        self.inbound_lock = f"SELECT pg_advisory_xact_lock({INBOUND_LOCK})"

    @staticmethod
    def earlier_inbound(count: int) -> str:
        columns = ", ".join(InboundRow.STORED)
        marks = rawsql.marks(count)
        return f"SELECT {columns} FROM inbound_message WHERE message_id IN ({marks})"  # noqa: S608

    @staticmethod
    def held_state(count: int) -> str:
        keyed = rawsql.any_of("party = ? AND kind = ? AND key = ?", count)
        return f"SELECT party, kind, key, revision FROM current_state WHERE {keyed}"  # noqa: S608


class InboundStore:
    """The inbound tables (``inbound_message``, ``inbound_original``, ``current_state``,
    ``subscriber_cursor``, ``rejection``); the registry's rows of what they accept are
    written with them."""

    def __init__(self, db: Database, trail: TrailStore, registry: Registry) -> None:
        self.db, self.trail, self.registry = db, trail, registry
        self.sql = InboundSql()

    async def accept(
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
        return await self.db.run(
            lambda: self.db.transaction(lambda tx: self.accept_in(tx, incoming, sign))
        )

    def accept_in(
        self,
        tx: Tx,
        incoming: Sequence[Incoming],
        sign: Callable[[list[InboundRow], tuple[int, bytes]], list[bytes]],
    ) -> list[Accepted]:
        """``accept``'s work, in a transaction of the caller's (a group commit's)."""
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
        size = self.trail.size_in(tx)
        # the leaves first: each receipt names its "received" leaf and the tree they grow
        received = [_inbound_event("received", item) for item in fresh]
        self.trail.append_in(tx, received + again)
        if fresh:
            self._apply_revisions(tx, fresh)
            rows = [item.row for item in fresh]
            for i, row in enumerate(rows):
                row.trail_index = size + i
            self._register(tx, fresh)
            head = self.trail.head_in(tx)
            for row, receipt in zip(rows, sign(rows, head), strict=True):
                row.signed_receipt = receipt
            time = self.db.time
            tx.many(self.sql.insert_inbound, [INBOUND_WRITER.values(r, time) for r in rows])
            originals = [r for r in rows if r.original_format]
            if originals:
                tx.many(
                    self.sql.insert_original,
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
        for part in rawsql.chunks(ids, rawsql.IDS_PER_QUERY):
            for values in tx.rows(self.sql.earlier_inbound(len(part)), part):
                row = InboundRow.stored(values, now)
                found[(row.sender, row.message_id)] = row
        return found

    def _apply_revisions(self, tx: Tx, fresh: Sequence[Incoming]) -> None:
        refs = [item for item in fresh if item.state is not None and item.state.revision > 0]
        if not refs:
            return
        wanted = list({(r.party, r.kind, r.key) for r in (i.state for i in refs) if r is not None})
        held: dict[StateKey, int] = {}
        for part in rawsql.chunks(wanted):
            params = [value for key in part for value in key]
            for party, kind, key, revision in tx.rows(self.sql.held_state(len(part)), params):
                held[(party, kind, key)] = int(revision)
        changed: dict[StateKey, tuple[int, str]] = {}
        for item in refs:
            ref = item.state
            assert ref is not None  # noqa: S101 - filtered above
            if newer_wins(held, ref):
                changed[ref.state] = (ref.revision, item.row.message_id)
            else:
                item.row.superseded = True
        now = self.db.time(utcnow())
        tx.many(
            self.sql.upsert_state,
            [
                (party, kind, key, revision, message_id, now)
                for (party, kind, key), (revision, message_id) in changed.items()
            ],
        )

    def _register(self, tx: Tx, fresh: Sequence[Incoming]) -> None:
        """The registry's rows of the AEO statuses and control results among ``fresh``, each
        with its "received" leaf (hub/store/registry.py)."""
        aeo: list[AeoRecord] = []
        controls: list[ControlRecord] = []
        for item in fresh:
            record = item.record
            if record is None:
                continue
            item.record = record = replace(record, trail_index=item.row.trail_index)
            if isinstance(record, AeoRecord):
                aeo.append(record)
            else:
                controls.append(record)
        if aeo or controls:
            self.registry.write_in(tx, aeo, controls)

    def _serialise_inbound(self, tx: Tx) -> None:
        """Make inbound ids (the subscribers' cursor) visible in the order they were assigned.

        PostgreSQL hands out serial ids at insert time; two concurrent transactions could commit
        11 before 10, and a subscriber that read 11 would move its cursor past 10 for ever. A
        transaction-scoped advisory lock serialises inbound inserts so ids commit in order
        (and makes the duplicate check and the insert atomic across replicas). SQLite
        serialises writers by itself (BEGIN IMMEDIATE).
        """
        if not self.db.is_sqlite:
            tx.rows(self.sql.inbound_lock)

    async def current_state(self, party: str | None = None) -> list[CurrentState]:
        async def work() -> list[CurrentState]:
            async with self.db.session() as s:
                query = select(CurrentState).order_by(
                    col(CurrentState.party), col(CurrentState.kind), col(CurrentState.key)
                )
                if party is not None:
                    query = query.where(CurrentState.party == party)
                return list((await s.exec(query)).all())

        return await self.db.run(work)

    async def find(self, sender: str, message_id: str) -> InboundMessage | None:
        async def work() -> InboundMessage | None:
            async with self.db.session() as s:
                rows = await s.exec(
                    select(InboundMessage).where(
                        InboundMessage.sender == sender, InboundMessage.message_id == message_id
                    )
                )
                return rows.first()

        return await self.db.run(work)

    async def after(self, cursor: int, limit: int) -> list[InboundMessage]:
        async def work() -> list[InboundMessage]:
            async with self.db.session() as s:
                rows = await s.exec(
                    select(InboundMessage)
                    .where(col(InboundMessage.id) > cursor)
                    .order_by(col(InboundMessage.id))
                    .limit(limit)
                )
                return list(rows.all())

        return await self.db.run(work)

    async def acknowledged(self, subscriber: str) -> int:
        async def work() -> int:
            async with self.db.session() as s:
                row = await s.get(SubscriberCursor, subscriber)
                return row.acknowledged if row else 0

        return await self.db.run(work)

    async def acknowledge(self, subscriber: str, cursor: int) -> int:
        """Move a subscriber's cursor forward (never back, never past the newest inbound
        message, so a mistaken acknowledgement cannot skip what has not arrived yet); returns
        the cursor now stored. Each message newly acknowledged gets its "handed-over" leaf."""
        cursors = table_named("subscriber_cursor")

        def work(tx: Tx) -> int:
            conn = tx.conn
            # first, so that acknowledgements of one subscriber are serialised (PostgreSQL)
            self.trail.size_in(tx)
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
            self.trail.append_in(
                tx,
                [
                    trail.Event(
                        "handed-over",
                        now,
                        message_id=message_id,
                        sender=sender,
                        recipient=subscriber[:ID_CHARS],
                        body_type=body_type,
                    )
                    for message_id, sender, body_type in handed
                ],
            )
            return bounded

        return await self.db.run(lambda: self.db.transaction(work))

    async def record_rejection(self, rejection: Rejection) -> None:
        await self.record_rejections([rejection])

    async def record_rejections(self, rejections: Sequence[Rejection]) -> None:
        """Record refusals, each with its "rejected" leaf."""

        def work(tx: Tx) -> None:
            conn = tx.conn
            conn.execute(insert(REJECTION), [values_of(r, REJECTION_COLUMNS) for r in rejections])
            self.trail.append_in(tx, [_rejected_event(r) for r in rejections])

        if rejections:
            await self.db.run(lambda: self.db.transaction(work))
