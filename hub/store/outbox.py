"""Messages this hub signed for partners: queued with their outbox entries, claimed when due,
settled by receipts or failures, expired, and an operator's requeue, re-sign and drop of dead
letters (and drop or re-route of the queued messages of a partner removed from the config);
a partner's backoff as a whole. Every change of status is one hub/core/outbox.py's state
machine allows, and is logged in the trail in the same transaction. The operators' changes
and expiry read the status and call ``move``; a receipt settles its message from any status
(the machine allows that, and tests/test_outbox.py holds it to it), so the settling statement
writes without reading.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy import select as core_select
from sqlmodel import col, select

from hub.core.errors import StoreError
from hub.core.limits import DETAIL_CHARS, ERROR_CHARS
from hub.core.outbox import Outbound, move
from hub.store import rawsql
from hub.store.engine import Database
from hub.store.rawsql import Tx
from hub.store.schema import (
    DEAD,
    OUTBOUND,
    OUTBOUND_WRITER,
    OUTBOX,
    PARTNER_BACKOFF,
    QUEUED,
    RECEIPT_WRITER,
    SUBMISSION,
    DueDelivery,
    NewOutbound,
    OutboundMessage,
    OutboxEntry,
    PartnerBackoff,
    Settlement,
    as_utc,
    business_keys_of,
    utcnow,
)
from hub.store.trail import TrailStore
from hub.trail import events as trail


def _outbound_event(kind: str, at: datetime, row: Any, **more: Any) -> trail.Event:
    """An event about an outbound message, from a row with its message_id, recipient,
    correlation_id and body_type columns."""
    return trail.Event(
        kind,
        at,
        message_id=row.message_id,
        recipient=row.recipient,
        correlation_id=row.correlation_id,
        body_type=row.body_type,
        **more,
    )


def _queued_event(message: NewOutbound | OutboundMessage) -> trail.Event:
    return _outbound_event(
        "queued",
        message.created_at,
        message,
        envelope_digest=message.envelope_digest,
        document_digest=message.document_digest or b"",
        keys=business_keys_of(message.business_keys),
        agreement=getattr(message, "agreement", ""),  # a stored row has none: it is queued
        policy_digest=getattr(message, "policy_digest", ""),
    )


def _operator_event(kind: str, row: Any, at: datetime, detail: str) -> trail.Event:
    """A dead letter an operator requeued, re-signed or dropped (row: ``_dead_letters``)."""
    return _outbound_event(kind, at, row, keys=business_keys_of(row.business_keys), detail=detail)


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
        keys=business_keys_of(settlement.due.business_keys),
        outcome=receipt.outcome,
        reason=receipt.reason,
        detail=(settlement.dead_reason or "")[:DETAIL_CHARS],
    )


# An outbox entry's columns, in the order ``_enqueue`` builds its rows.
OUTBOX_INSERT = (
    "id",
    "outbound_id",
    "partner",
    "state",
    "next_attempt_at",
    "expires_at",
    "attempts",
)


class OutboxSql:
    """The outbound tables' statements on the hot paths, as plain SQL (hub/store/rawsql.py):
    names and placeholders only; values always travel as parameters."""

    def __init__(self, is_sqlite: bool) -> None:
        ins = rawsql.insert
        self.insert_outbound = ins("outbound_message", OUTBOUND_WRITER.columns)
        self.insert_outbox = ins("outbox", OUTBOX_INSERT)
        self.insert_submission = ins("submission", ("submission_id", "response", "created_at"))
        self.insert_receipt = ins("receipt", RECEIPT_WRITER.columns, " ON CONFLICT DO NOTHING")
        # a receipt settles a message whatever its status (hub/core/outbox.py)
        self.set_outbound_status = "UPDATE outbound_message SET status = ? WHERE id = ?"
        # entries are named by their id and their message, so a settlement that arrives late
        # can only ever touch its own entry
        self.delete_entry = "DELETE FROM outbox WHERE id = ? AND outbound_id = ?"
        self.dead_entry = (
            "UPDATE outbox SET state = 'dead', dead_reason = ? WHERE id = ? AND outbound_id = ?"
        )
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


# LOCK_ORDER: on PostgreSQL, a transaction that changes queued entries of a partner and appends
# to the trail takes the trail lock before any row: a failure being recorded by the hub (its
# backoff row, then the entries) and an operator's drop or re-route from the command line (the
# entries, then the backoff row) would otherwise each hold what the other waits for.


class OutboxStore:
    """The outbound tables (``outbound_message``, ``outbox``, ``receipt``, ``submission``)."""

    def __init__(self, db: Database, trail: TrailStore) -> None:
        self.db, self.trail = db, trail
        self.sql = OutboxSql(db.is_sqlite)

    async def enqueue(
        self,
        messages: Sequence[NewOutbound | OutboundMessage],
        submissions: Sequence[tuple[str, bytes]] = (),
    ) -> list[DueDelivery]:
        """Store outbound messages, their outbox entries and the answers to idempotent
        submissions in one transaction; returns the new entries, due now, in id order."""
        return await self.db.run(
            lambda: self.db.transaction(lambda tx: self.enqueue_in(tx, messages, submissions))
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
        self.trail.append_in(tx, [*events, *(_queued_event(m) for m in messages)])
        if submissions:
            now = self.db.time(utcnow())
            tx.many(
                self.sql.insert_submission,
                [(sid, response, now) for sid, response in submissions],
            )
        return entries

    def _ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """``count`` new ids for ``table``, in increasing order, taken in this transaction."""
        sql = self.sql
        if self.db.is_sqlite:  # the write lock is held: nobody else takes ids meanwhile
            statement = sql.next_outbound_id if table == OUTBOUND.name else sql.next_outbox_id
            first = int(tx.value(statement))
            return list(range(first, first + count))
        statement = sql.outbound_ids if table == OUTBOUND.name else sql.outbox_ids
        return sorted(int(oid) for (oid,) in tx.rows(statement, (count,)))

    def _enqueue(
        self, tx: Tx, messages: Sequence[NewOutbound | OutboundMessage]
    ) -> list[DueDelivery]:
        if not messages:
            return []
        time = self.db.time
        outbound_ids = self._ids(tx, OUTBOUND.name, len(messages))
        entry_ids = self._ids(tx, OUTBOX.name, len(messages))
        for oid, m in zip(outbound_ids, messages, strict=True):
            m.id = oid
        tx.many(self.sql.insert_outbound, [OUTBOUND_WRITER.values(m, time) for m in messages])
        tx.many(
            self.sql.insert_outbox,
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
                m.created_at,
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
            async with self.db.engine.connect() as conn:
                for part in rawsql.chunks(
                    list(dict.fromkeys(submission_ids)), rawsql.IDS_PER_QUERY
                ):
                    result = await conn.execute(
                        core_select(SUBMISSION.c.submission_id, SUBMISSION.c.response).where(
                            SUBMISSION.c.submission_id.in_(part)
                        )
                    )
                    found.update((key, bytes(answer)) for key, answer in result)
            return found

        return await self.db.run(work)

    async def due(
        self, now: datetime, limit: int, partner: str | None = None, after: int = 0
    ) -> list[DueDelivery]:
        """Queued entries due at ``now``, oldest first (creation order), for one partner or
        all; ``after`` skips entries up to that id (the ones already in flight)."""

        async def work() -> list[DueDelivery]:
            query = (
                core_select(*DueDelivery.COLUMNS)
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
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            return [DueDelivery.of(r) for r in rows]

        return await self.db.run(work)

    async def queued_partners(self) -> list[str]:
        async def work() -> list[str]:
            async with self.db.engine.connect() as conn:
                result = await conn.execute(
                    core_select(OUTBOX.c.partner).where(OUTBOX.c.state == QUEUED).distinct()
                )
                return list(result.scalars().all())

        return await self.db.run(work)

    async def queued_by_partner(self) -> dict[str, tuple[int, datetime]]:
        """Each partner's queued entries: how many, and when the oldest was queued (the hub's
        outbox gauges; partners with nothing queued are not named)."""

        async def work() -> dict[str, tuple[int, datetime]]:
            query = (
                core_select(OUTBOX.c.partner, func.count(), func.min(OUTBOUND.c.created_at))
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .where(OUTBOX.c.state == QUEUED)
                .group_by(OUTBOX.c.partner)
            )
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
            return {partner: (count, as_utc(oldest)) for partner, count, oldest in rows}

        return await self.db.run(work)

    async def record_receipts(self, results: Sequence[Settlement]) -> None:
        """Store partner receipts and settle their outbox entries, in one transaction: a
        delivered message leaves the outbox, a finally rejected one becomes a dead letter."""

        await self.db.run(lambda: self.db.transaction(lambda tx: self.settle_in(tx, results)))

    def settle_in(self, tx: Tx, results: Sequence[Settlement]) -> None:
        """``record_receipts``'s work, in a transaction of the caller's (a group commit's)."""
        if not results:
            return
        sql, time = self.sql, self.db.time
        self.trail.append_in(tx, [_settled_event(r) for r in results])
        tx.many(
            sql.insert_receipt,
            [RECEIPT_WRITER.values(s.receipt, time) for s in results],
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
                (s.dead_reason[:ERROR_CHARS], s.due.entry_id, s.due.outbound_id)
                for s in results
                if s.dead_reason is not None
            ],
        )

    async def record_failure(
        self,
        entry_ids: Sequence[int],
        error: str,
        next_attempt_at: datetime | None,
        backoff: PartnerBackoff | None = None,
    ) -> None:
        """Count a failed attempt; ``next_attempt_at`` None leaves the entry's time alone (the
        partner as a whole is backing off, and entries keep their order). ``backoff``, the
        partner's wait as a whole, is stored in the same transaction (replacing the last)."""

        values: dict[str, Any] = {
            "attempts": OUTBOX.c.attempts + 1,
            "last_error": error[:ERROR_CHARS],
        }
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        # only entries still queued: one the expiry sweep made a dead letter meanwhile (a slow
        # attempt, a pre-flight handshake timing out) keeps its state, and the trail does not
        # record a failed try after its dead-lettered leaf
        still_queued = (OUTBOX.c.id.in_(list(entry_ids)), OUTBOX.c.state == "queued")
        statement = update(OUTBOX).where(*still_queued).values(**values)
        failed = (
            core_select(
                OUTBOUND.c.message_id,
                OUTBOX.c.partner.label("recipient"),
                OUTBOUND.c.correlation_id,
                OUTBOUND.c.body_type,
            )
            .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
            .where(*still_queued)
            .order_by(OUTBOX.c.id)
        )

        def work(tx: Tx) -> None:
            self.trail.size_in(tx)  # the trail lock first: LOCK_ORDER
            conn = tx.conn
            if backoff is not None:
                self._set_backoff(tx, backoff)
            if not entry_ids:
                return
            now = utcnow()
            events = [
                _outbound_event("delivery-failed", now, r, detail=error[:DETAIL_CHARS])
                for r in conn.execute(failed)
            ]
            conn.execute(statement)
            self.trail.append_in(tx, events)

        await self.db.run(lambda: self.db.transaction(work))

    def _set_backoff(self, tx: Tx, backoff: PartnerBackoff) -> None:
        """The partner's one backoff row, replaced (delete and insert: the same on SQLite and
        PostgreSQL, and one writer holds the partner's row at a time). None is kept for a
        partner with nothing queued: an attempt that failed after an operator dropped or
        re-routed what it was sending leaves nothing to wait for."""
        tx.conn.execute(delete(PARTNER_BACKOFF).where(PARTNER_BACKOFF.c.partner == backoff.partner))
        queued = core_select(OUTBOX.c.id).where(
            OUTBOX.c.partner == backoff.partner, OUTBOX.c.state == QUEUED
        )
        if tx.conn.execute(queued.limit(1)).first() is None:
            return
        _insert_backoff(tx, backoff)

    async def record_stop(self, backoff: PartnerBackoff) -> None:
        """The partner's backoff row saying that delivery to it is stopped (hub/app/delivery.py,
        docs/adr/0009), kept whether or not anything is queued: `customs-hub status` shows
        the partner as stopped, and a restarted hub does not record the stop again."""

        def work(tx: Tx) -> None:
            tx.conn.execute(
                delete(PARTNER_BACKOFF).where(PARTNER_BACKOFF.c.partner == backoff.partner)
            )
            _insert_backoff(tx, backoff)

        await self.db.run(lambda: self.db.transaction(work))

    async def backoff(self, partner: str) -> PartnerBackoff | None:
        """The partner's stored backoff: None if its last attempt succeeded (or none failed)."""

        async def work() -> PartnerBackoff | None:
            async with self.db.engine.connect() as conn:
                row = (
                    await conn.execute(
                        core_select(PARTNER_BACKOFF).where(PARTNER_BACKOFF.c.partner == partner)
                    )
                ).first()
            if row is None:
                return None
            return PartnerBackoff(
                partner=row.partner,
                failures=row.failures,
                retry_at=as_utc(row.retry_at),
                failed_at=as_utc(row.failed_at),
                last_error=row.last_error,
            )

        return await self.db.run(work)

    async def clear_backoff(self, partner: str) -> None:
        """The partner was reached again: no more waiting for it (its row deleted)."""

        def work(tx: Tx) -> None:
            tx.conn.execute(delete(PARTNER_BACKOFF).where(PARTNER_BACKOFF.c.partner == partner))

        await self.db.run(lambda: self.db.transaction(work))

    async def expire(self, now: datetime) -> int:
        """Turn queued messages whose envelope has expired into dead letters; returns how many."""

        def work(tx: Tx) -> int:
            conn = tx.conn
            due = OUTBOX.c.state == QUEUED, OUTBOX.c.expires_at <= now
            if conn.execute(core_select(OUTBOX.c.id).where(*due).limit(1)).first() is None:
                return 0  # the usual case, every second: no lock taken
            self.trail.size_in(tx)  # the trail lock first: LOCK_ORDER
            expired = conn.execute(
                core_select(
                    OUTBOX.c.id,
                    OUTBOX.c.outbound_id,
                    OUTBOUND.c.message_id,
                    OUTBOX.c.partner.label("recipient"),
                    OUTBOUND.c.correlation_id,
                    OUTBOUND.c.body_type,
                    OUTBOUND.c.business_keys,
                    OUTBOUND.c.status,
                )
                .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
                .where(*due)
                .order_by(OUTBOX.c.id)
                .with_for_update()
            ).all()
            if not expired:
                return 0
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.id.in_([r.id for r in expired]))
                .values(
                    state=DEAD,
                    dead_reason=func.coalesce(
                        "expired undelivered; last error: " + OUTBOX.c.last_error,
                        "expired undelivered",
                    ),
                )
            )
            for r in expired:
                move(r.status, Outbound.DEAD)
            conn.execute(
                update(OUTBOUND)
                .where(OUTBOUND.c.id.in_([r.outbound_id for r in expired]))
                .values(status=Outbound.DEAD)
            )
            self.trail.append_in(
                tx,
                [
                    _outbound_event(
                        "dead-lettered",
                        now,
                        r,
                        keys=business_keys_of(r.business_keys),
                        reason="expired",
                    )
                    for r in expired
                ],
            )
            return len(expired)

        return await self.db.run(lambda: self.db.transaction(work))

    async def dead_letters(
        self, message_id: str | None = None, partner: str | None = None
    ) -> list[OutboundMessage]:
        return await self.in_outbox(message_id, partner, (DEAD,))

    async def in_outbox(
        self,
        message_id: str | None = None,
        partner: str | None = None,
        states: Sequence[str] = (QUEUED, DEAD),
    ) -> list[OutboundMessage]:
        """Messages whose outbox entry is in one of ``states`` (queued, dead), oldest first;
        a queued one has status "queued", a dead letter "dead" or "rejected"."""

        async def work() -> list[OutboundMessage]:
            async with self.db.session() as s:
                query = (
                    select(OutboundMessage)
                    .join(OutboxEntry, col(OutboxEntry.outbound_id) == OutboundMessage.id)
                    .where(col(OutboxEntry.state).in_(list(states)))
                    .order_by(col(OutboxEntry.id))
                )
                if message_id is not None:
                    query = query.where(OutboundMessage.message_id == message_id)
                if partner is not None:
                    query = query.where(OutboxEntry.partner == partner)
                return list((await s.exec(query)).all())

        return await self.db.run(work)

    async def requeue(self, message_ids: Sequence[str], now: datetime) -> int:
        """Put dead letters back in the queue as they are (their envelopes still valid)."""

        def work(tx: Tx) -> int:
            self.trail.size_in(tx)  # the trail lock first: LOCK_ORDER
            conn = tx.conn
            dead = self._dead_letters(tx, message_ids)
            if not dead:
                return 0
            for r in dead:
                move(r.status, Outbound.QUEUED)
            ids = [r.id for r in dead]
            conn.execute(
                update(OUTBOX)
                .where(OUTBOX.c.outbound_id.in_(ids))
                .values(state=QUEUED, dead_reason=None, next_attempt_at=now, attempts=0)
            )
            conn.execute(
                update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=Outbound.QUEUED)
            )
            detail = "an operator put it back in the queue"
            self.trail.append_in(tx, [_operator_event("requeued", r, now, detail) for r in dead])
            return len(ids)

        return await self.db.run(lambda: self.db.transaction(work))

    async def replace(
        self,
        replaced: Sequence[str],
        replacements: Sequence[NewOutbound],
        states: Sequence[str] = (DEAD,),
    ) -> None:
        """Settle messages still in the outbox (dead letters; with ``states``, queued ones
        too) as "replaced" and queue the new messages that replace them, in one transaction:
        if any of them has left the outbox meanwhile (delivered, dropped), nothing changes."""

        def work(tx: Tx) -> None:
            self.trail.size_in(tx)  # the trail lock first: LOCK_ORDER
            old = self._in_outbox(tx, replaced, states)
            if len(old) != len(replaced):
                raise StoreError("a message to replace is no longer in the outbox")
            self._out_of_the_outbox(tx, old, Outbound.REPLACED)
            self._enqueue(tx, replacements)
            self._forget_backoff(tx, {r.recipient for r in old})
            now = utcnow()
            by_old = dict(zip(replaced, replacements, strict=True))

            def detail(r: Any) -> str:
                new = by_old[r.message_id]
                if new.recipient != r.recipient:
                    return f"an operator re-routed it to {new.recipient} as {new.message_id}"
                return f"an operator re-signed it as {new.message_id}"

            self.trail.append_in(
                tx,
                [_operator_event("requeued", r, now, detail(r)) for r in old]
                + [_queued_event(m) for m in replacements],
            )

        await self.db.run(lambda: self.db.transaction(work))

    async def drop(
        self, message_ids: Sequence[str], reason: str, states: Sequence[str] = (DEAD,)
    ) -> list[str]:
        """Remove dead letters (with ``states``, queued messages too) from the outbox for good
        (the message stays, as "dead"); returns the ids of those removed."""

        def work(tx: Tx) -> list[str]:
            self.trail.size_in(tx)  # the trail lock first: LOCK_ORDER
            found = self._in_outbox(tx, message_ids, states)
            if found:
                self._out_of_the_outbox(tx, found, Outbound.DEAD)
                self._forget_backoff(tx, {r.recipient for r in found})
                now = utcnow()
                self.trail.append_in(
                    tx, [_operator_event("dropped", r, now, reason[:DETAIL_CHARS]) for r in found]
                )
            return [r.message_id for r in found]

        return await self.db.run(lambda: self.db.transaction(work))

    def _forget_backoff(self, tx: Tx, partners: set[str]) -> None:
        """A partner left with nothing queued is waited for no more (its backoff row goes)."""
        waiting = (
            core_select(OUTBOX.c.id)
            .where(OUTBOX.c.partner == PARTNER_BACKOFF.c.partner, OUTBOX.c.state == QUEUED)
            .correlate(PARTNER_BACKOFF)
        )
        tx.conn.execute(
            delete(PARTNER_BACKOFF).where(
                PARTNER_BACKOFF.c.partner.in_(sorted(partners)), ~waiting.exists()
            )
        )

    def _out_of_the_outbox(self, tx: Tx, found: Sequence[Any], status: Outbound) -> None:
        """Take these messages (rows of ``_in_outbox``) out of the outbox for good, moved to
        ``status`` as the state machine allows."""
        for r in found:
            move(r.status, status)
        ids = [r.id for r in found]
        tx.conn.execute(delete(OUTBOX).where(OUTBOX.c.outbound_id.in_(ids)))
        tx.conn.execute(update(OUTBOUND).where(OUTBOUND.c.id.in_(ids)).values(status=status))

    def _dead_letters(self, tx: Tx, message_ids: Sequence[str]) -> list[Any]:
        return self._in_outbox(tx, message_ids, (DEAD,))

    def _in_outbox(self, tx: Tx, message_ids: Sequence[str], states: Sequence[str]) -> list[Any]:
        """The outbound rows of these messages whose entry is in one of ``states``: id,
        message_id, recipient, correlation_id, body_type, business_keys and status, by name."""
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
                .where(
                    OUTBOX.c.state.in_(list(states)),
                    OUTBOUND.c.message_id.in_(list(message_ids)),
                )
                .order_by(OUTBOUND.c.id)
                # held until the commit: a settlement cannot change them between this read
                # and the update that moves them (PostgreSQL; SQLite has one writer)
                .with_for_update()
            ).all()
        )


def _insert_backoff(tx: Tx, backoff: PartnerBackoff) -> None:
    tx.conn.execute(
        PARTNER_BACKOFF.insert().values(
            partner=backoff.partner,
            failures=backoff.failures,
            retry_at=backoff.retry_at,
            failed_at=backoff.failed_at,
            last_error=backoff.last_error[:ERROR_CHARS],
        )
    )
