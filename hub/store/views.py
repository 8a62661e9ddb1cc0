"""Read-only listings for operators and auditors: messages, outbox entries, refusals."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import case, func
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
    QUEUED,
    InboundMessage,
    MessageRow,
    OutboundMessage,
    OutboxEntry,
    OutboxRow,
    ReceiptRecord,
    Rejection,
    StoredMessage,
    as_utc,
)


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
            out = []
            for r in rows:
                state = "retrying" if r.state == QUEUED and r.attempts > 0 else r.state
                out.append(
                    OutboxRow(
                        r.message_id,
                        r.partner,
                        r.body_type,
                        state,
                        r.attempts,
                        (r.dead_reason if r.state == DEAD else r.last_error) or "",
                        as_utc(r.created_at),
                        as_utc(r.next_attempt_at),
                    )
                )
            return out

        return await self.db.run(work)

    async def stored_messages(self, message_id: str) -> list[StoredMessage]:
        """Every message with this id, sent or received, with its exact signed bytes."""

        async def work() -> list[StoredMessage]:
            async with self.db.engine.connect() as conn:
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

        return await self.db.run(work)

    async def rejections(self) -> list[Rejection]:
        async def work() -> list[Rejection]:
            async with self.db.session() as s:
                return list((await s.exec(select(Rejection).order_by(col(Rejection.id)))).all())

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
