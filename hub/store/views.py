"""Read-only listings for operators and auditors: messages, outbox entries, refusals, each
partner's delivery state."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, column, func, literal, union_all
from sqlalchemy import select as core_select
from sqlmodel import col, select

from hub.core.envelope import RAW_BODY_TYPE
from hub.store.engine import Database
from hub.store.schema import (
    DEAD,
    INBOUND,
    ORIGINAL,
    OUTBOUND,
    OUTBOX,
    PARTNER_BACKOFF,
    QUEUED,
    RECEIPT,
    InboundMessage,
    MessageRow,
    OutboundMessage,
    OutboxEntry,
    OutboxRow,
    ReceiptRecord,
    Rejection,
    StoredMessage,
    as_utc,
    business_keys_of,
)
from hub.trail.messages import INBOUND as IN
from hub.trail.messages import OUTBOUND as OUT
from hub.trail.messages import MessageRecord


class Views:
    """Read-only listings: messages and outbox entries for operators, stored messages for
    auditors, whole tables for tests."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(query)).all()
                waits = {
                    r.partner: as_utc(r.retry_at)
                    for r in await conn.execute(
                        core_select(PARTNER_BACKOFF.c.partner, PARTNER_BACKOFF.c.retry_at)
                    )
                }
            out = []
            for r in rows:
                state = "retrying" if r.state == QUEUED and r.attempts > 0 else r.state
                next_attempt = as_utc(r.next_attempt_at)
                partner_wait = waits.get(r.partner)
                if r.state == QUEUED and partner_wait is not None:
                    # the partner backs off as a whole: nothing of its goes before then
                    next_attempt = max(next_attempt, partner_wait)
                out.append(
                    OutboxRow(
                        r.message_id,
                        r.partner,
                        r.body_type,
                        state,
                        r.attempts,
                        (r.dead_reason if r.state == DEAD else r.last_error) or "",
                        as_utc(r.created_at),
                        next_attempt,
                        r.last_error or "",
                    )
                )
            return out

        return await self.db.run(work)

    async def stored_messages(self, message_id: str) -> list[StoredMessage]:
        """Every message with this id, sent or received, with its exact signed bytes."""

        async def work() -> list[StoredMessage]:
            async with self.db.engine.connect() as conn:
                # with the partner's signed receipt for it, once one settled it
                out = await conn.execute(
                    core_select(
                        OUTBOUND.c.recipient,
                        OUTBOUND.c.body_type,
                        OUTBOUND.c.envelope_digest,
                        OUTBOUND.c.envelope,
                        RECEIPT.c.signed_receipt,
                    )
                    .select_from(
                        OUTBOUND.outerjoin(RECEIPT, RECEIPT.c.message_id == OUTBOUND.c.message_id)
                    )
                    .where(OUTBOUND.c.message_id == message_id)
                )
                found = [
                    StoredMessage(
                        message_id,
                        "outbound",
                        r,
                        t,
                        bytes(d),
                        envelope=bytes(e),
                        signed_receipt=bytes(s or b""),
                    )
                    for r, t, d, e, s in out
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
                        INBOUND.c.envelope,
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
                        message_id,
                        "inbound",
                        p,
                        t,
                        bytes(d),
                        envelope=bytes(e or b""),  # none for messages stored before 0003
                        header=bytes(h),
                        body=bytes(b),
                    )
                    for p, t, d, h, b, e in inbound
                ]
                return found

        return await self.db.run(work)

    async def evidence(
        self, direction: str, after: int, limit: int
    ) -> list[tuple[int, MessageRecord]]:
        """Up to ``limit`` stored messages of one direction (``IN`` or ``OUT``) with row id
        after ``after``, by id, each with its envelope as received or sent and, inbound, its
        header and signed body as stored (a partner document's original, not its translation):
        what a trail export holds for ``trail verify --messages``."""

        async def work() -> list[tuple[int, MessageRecord]]:
            if direction == OUT:
                sent = (
                    core_select(
                        OUTBOUND.c.id,
                        OUTBOUND.c.recipient,
                        OUTBOUND.c.message_id,
                        OUTBOUND.c.envelope,
                    )
                    .where(OUTBOUND.c.id > after)
                    .order_by(OUTBOUND.c.id)
                    .limit(limit)
                )
                async with self.db.engine.connect() as conn:
                    return [
                        (int(i), MessageRecord(OUT, r, m, bytes(e)))
                        for i, r, m, e in await conn.execute(sent)
                    ]
            received = (
                core_select(
                    INBOUND.c.id,
                    INBOUND.c.sender,
                    INBOUND.c.message_id,
                    INBOUND.c.envelope,
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
                .where(INBOUND.c.id > after)
                .order_by(INBOUND.c.id)
                .limit(limit)
            )
            async with self.db.engine.connect() as conn:
                return [
                    (int(i), MessageRecord(IN, p, m, bytes(e or b""), bytes(h), bytes(b)))
                    for i, p, m, e, h, b in await conn.execute(received)
                ]

        return await self.db.run(work)

    async def rejections(self, source: str | None = None, after: int = 0) -> list[Rejection]:
        """What was refused, oldest first: from ``source`` only if given, and after the
        rejection with id ``after``."""

        async def work() -> list[Rejection]:
            query = select(Rejection).where(col(Rejection.id) > after)
            if source is not None:
                query = query.where(col(Rejection.source) == source)
            async with self.db.session() as s:
                return list((await s.exec(query.order_by(col(Rejection.id)))).all())

        return await self.db.run(work)

    async def inbound(self) -> list[InboundMessage]:
        async def work() -> list[InboundMessage]:
            async with self.db.session() as s:
                rows = await s.exec(select(InboundMessage).order_by(col(InboundMessage.id)))
                return list(rows.all())

        return await self.db.run(work)

    async def outbound(self) -> list[tuple[OutboundMessage, ReceiptRecord | None]]:
        async def work() -> list[tuple[OutboundMessage, ReceiptRecord | None]]:
            async with self.db.session() as s:
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

        return await self.db.run(work)

    async def outbox(self) -> list[OutboxEntry]:
        async def work() -> list[OutboxEntry]:
            async with self.db.session() as s:
                return list((await s.exec(select(OutboxEntry).order_by(col(OutboxEntry.id)))).all())

        return await self.db.run(work)

    async def message_rows(self, query: MessageQuery | None = None) -> MessagePage:
        """The messages sent and received that match ``query``, newest first, at most
        ``query.limit`` of them: filtered, ordered and cut in SQL, so a listing reads only
        the rows it shows (one more, to say whether there are more)."""
        query = query or MessageQuery()
        receipts = core_select(RECEIPT.c.outcome).where(
            RECEIPT.c.message_id == OUTBOUND.c.message_id
        )
        sent = core_select(
            literal("out").label("direction"),
            OUTBOUND.c.message_id,
            OUTBOUND.c.body_type,
            OUTBOUND.c.recipient.label("partner"),
            OUTBOUND.c.status,
            func.coalesce(receipts.scalar_subquery(), "-").label("receipt"),
            OUTBOUND.c.business_keys,
            OUTBOUND.c.created_at.label("at"),
        )
        inbound_status = case((INBOUND.c.superseded, "superseded"), else_="accepted")
        received = core_select(
            literal("in").label("direction"),
            INBOUND.c.message_id,
            INBOUND.c.body_type,
            INBOUND.c.sender.label("partner"),
            inbound_status.label("status"),
            literal("sent").label("receipt"),
            INBOUND.c.business_keys,
            INBOUND.c.received_at.label("at"),
        )
        if query.partner:
            sent = sent.where(OUTBOUND.c.recipient == query.partner)
            received = received.where(INBOUND.c.sender == query.partner)
        if query.body_type:
            sent = sent.where(OUTBOUND.c.body_type == query.body_type)
            received = received.where(INBOUND.c.body_type == query.body_type)
        if query.since is not None:
            sent = sent.where(OUTBOUND.c.created_at >= query.since)
            received = received.where(INBOUND.c.received_at >= query.since)
        if query.status:
            sent = sent.where(OUTBOUND.c.status == query.status)
            received = received.where(inbound_status == query.status)
        parts = [
            part
            for direction, part in (("out", sent), ("in", received))
            if query.direction in ("", direction)
        ]
        listing = parts[0] if len(parts) == 1 else union_all(*parts)
        statement = (
            core_select(listing.subquery())
            .order_by(column("at").desc(), column("message_id"))
            .limit(query.limit + 1)
        )

        async def work() -> MessagePage:
            async with self.db.engine.connect() as conn:
                rows = (await conn.execute(statement)).all()
            found = [
                MessageRow(
                    r.direction,
                    r.message_id,
                    r.body_type,
                    r.partner,
                    r.status,
                    r.receipt or "-",
                    business_keys_of(r.business_keys),
                    as_utc(r.at if isinstance(r.at, datetime) else datetime.fromisoformat(r.at)),
                )
                for r in rows[: query.limit]
            ]
            return MessagePage(found, more=len(rows) > query.limit)

        return await self.db.run(work)

    async def partner_status(self) -> dict[str, PartnerStatus]:
        """Each partner's delivery state, from what the store holds: its latest receipt that
        took a message (accepted, or a duplicate of one taken before), its outbox entries
        waiting (and of those, retrying after a failure), its dead letters and its backoff
        (hub/app/delivery.py). Partners with nothing sent are absent."""
        delivered = core_select(
            RECEIPT.c.receiver.label("partner"), func.max(RECEIPT.c.received_at).label("at")
        ).where(RECEIPT.c.outcome.in_(("accepted", "duplicate")))
        delivered = delivered.group_by(RECEIPT.c.receiver)
        waiting = OUTBOX.c.state == QUEUED
        outbox = (
            core_select(
                OUTBOX.c.partner,
                func.sum(case((waiting, 1), else_=0)).label("queued"),
                func.sum(case((waiting & (OUTBOX.c.attempts > 0), 1), else_=0)).label("retrying"),
                func.sum(case((OUTBOX.c.state == DEAD, 1), else_=0)).label("dead"),
                func.min(case((waiting, OUTBOUND.c.created_at))).label("oldest"),
            )
            .join(OUTBOUND, OUTBOUND.c.id == OUTBOX.c.outbound_id)
            .group_by(OUTBOX.c.partner)
        )

        async def work() -> dict[str, PartnerStatus]:
            async with self.db.engine.connect() as conn:
                last = {r.partner: r.at for r in await conn.execute(delivered)}
                entries = {r.partner: r for r in await conn.execute(outbox)}
                waits = {r.partner: r for r in await conn.execute(core_select(PARTNER_BACKOFF))}
            found = {}
            for partner in sorted(set(last) | set(entries) | set(waits)):
                entry = entries.get(partner)
                wait = waits.get(partner)
                found[partner] = PartnerStatus(
                    partner,
                    _time(last.get(partner)),
                    int(entry.queued) if entry else 0,
                    int(entry.retrying) if entry else 0,
                    int(entry.dead) if entry else 0,
                    _time(entry.oldest) if entry else None,
                    _time(wait.retry_at) if wait else None,
                    int(wait.failures) if wait else 0,
                    str(wait.last_error) if wait else "",
                )
            return found

        return await self.db.run(work)


def _time(value: datetime | str | None) -> datetime | None:
    """A time read back from an aggregate, which SQLite hands back as its stored text."""
    if value is None:
        return None
    return as_utc(value if isinstance(value, datetime) else datetime.fromisoformat(value))


@dataclass(frozen=True)
class MessageQuery:
    """What ``customs-hub messages`` lists: every filter given must match (``body_type`` a
    full name, ``direction`` "in" or "out", ``status`` as the listing shows it)."""

    partner: str = ""
    body_type: str = ""
    since: datetime | None = None
    status: str = ""
    direction: str = ""
    limit: int = 100


@dataclass(frozen=True)
class MessagePage:
    """The newest matching messages, and whether more matched than the limit let through."""

    rows: list[MessageRow]
    more: bool


@dataclass(frozen=True)
class PartnerStatus:
    """One partner's line of ``customs-hub status``."""

    partner: str
    last_success: datetime | None  # the latest receipt that took a message
    queued: int  # outbox entries waiting, retrying ones included
    retrying: int  # waiting after at least one failed attempt
    dead: int  # dead letters
    oldest_queued: datetime | None  # when the oldest waiting message was created
    retry_at: datetime | None = None  # backing off after failures: not tried before then
    failures: int = 0  # consecutive failures of the partner as a whole
    last_error: str = ""  # of the partner as a whole; "stopped: ..." while it is stopped
