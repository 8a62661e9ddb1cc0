"""Partners' signing certificates learned from the certificate their signatures carried
(docs/adr/0010-key-rotation.md): each stored once, with a "key-learned" leaf in the trail in
the same transaction, and read back whole at start and for trail exports.

The store decides nothing about them: hub/core/trust.py checked each certificate before it
is handed here, and the hub checks them again (anchor, dates, revocation) at every use.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy import select as core_select

from hub.core.limits import DETAIL_CHARS
from hub.store.engine import Database
from hub.store.rawsql import Tx
from hub.store.schema import LEARNED_KEY, as_utc
from hub.store.trail import TrailStore
from hub.trail import events as trail

# The trail's business-key name under which a key-learned leaf names the key id, so an auditor
# finds when a key was learned with `trail query --key signing-key=<key id>`.
KEY_NAME = "signing-key"


@dataclass(frozen=True)
class LearnedCertificate:
    """A row of ``learned_signing_key``."""

    party: str
    key_id: str
    certificate: bytes  # DER
    certificate_digest: bytes
    not_after: datetime
    learned_at: datetime
    message_id: str = ""  # the message (or the message a receipt answered) that carried it
    subject: str = ""  # for the trail's sentence only; not stored


def _event(row: LearnedCertificate) -> trail.Event:
    detail = (
        f"{row.party}'s signing key {row.key_id[:16]} learned from the certificate carried "
        f"with its signature ({row.subject}), valid until {row.not_after:%Y-%m-%dT%H:%M:%SZ}"
    )
    return trail.Event(
        "key-learned",
        row.learned_at,
        message_id=row.message_id,
        sender=row.party,
        detail=detail[:DETAIL_CHARS],
        keys={KEY_NAME: [row.key_id]},
        config_digest=row.certificate_digest,  # what changed in what this hub trusts
    )


class LearnedKeyStore:
    """The ``learned_signing_key`` table."""

    def __init__(self, db: Database, trail_store: TrailStore) -> None:
        self.db, self.trail = db, trail_store

    async def learn(self, rows: Sequence[LearnedCertificate]) -> list[LearnedCertificate]:
        """Store the certificates not stored yet, each with its key-learned leaf, in one
        transaction; returns those that were new (another call, or another replica, may have
        learned the same key first)."""

        def work(tx: Tx) -> list[LearnedCertificate]:
            self.trail.size_in(tx)  # on PostgreSQL: the trail lock, which also orders this
            known = {
                (party, key_id)
                for party, key_id in tx.conn.execute(
                    core_select(LEARNED_KEY.c.party, LEARNED_KEY.c.key_id)
                )
            }
            new: dict[tuple[str, str], LearnedCertificate] = {}
            for row in rows:
                if (row.party, row.key_id) not in known:
                    new.setdefault((row.party, row.key_id), row)
            if not new:
                return []
            tx.conn.execute(
                insert(LEARNED_KEY),
                [
                    {
                        "party": r.party,
                        "key_id": r.key_id,
                        "certificate": r.certificate,
                        "certificate_digest": r.certificate_digest,
                        "not_after": r.not_after,
                        "learned_at": r.learned_at,
                        "message_id": r.message_id,
                    }
                    for r in new.values()
                ],
            )
            self.trail.append_in(tx, [_event(r) for r in new.values()])
            return list(new.values())

        return await self.db.write(work)

    async def all(self) -> list[LearnedCertificate]:
        """Every learned certificate, oldest first."""

        async def work() -> list[LearnedCertificate]:
            query = core_select(LEARNED_KEY).order_by(
                LEARNED_KEY.c.learned_at, LEARNED_KEY.c.party, LEARNED_KEY.c.key_id
            )
            async with self.db.engine.connect() as conn:
                return [
                    LearnedCertificate(
                        party=r.party,
                        key_id=r.key_id,
                        certificate=bytes(r.certificate),
                        certificate_digest=bytes(r.certificate_digest),
                        not_after=as_utc(r.not_after),
                        learned_at=as_utc(r.learned_at),
                        message_id=r.message_id,
                    )
                    for r in await conn.execute(query)
                ]

        return await self.db.run(work)
