"""The certificates this hub's configurations named (``certificate_history``): trust anchors
and signing certificates, its own and its partners', each stored once, the first time a start
or reload used it, and never deleted. What a trail export adds to the certificates the
configuration names now (hub/app/learning.py ``trusted_certificates``).

The store decides nothing about them: they were checked when the configuration was loaded,
and a verifier checks them again against their anchors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy import select as core_select

from hub.store.engine import Database
from hub.store.rawsql import Tx
from hub.store.schema import CERTIFICATE_HISTORY, as_utc

ANCHOR, SIGNING = "anchor", "signing"


@dataclass(frozen=True)
class SeenCertificate:
    party: str
    role: str  # ANCHOR or SIGNING
    certificate: bytes  # DER
    first_seen: datetime | None = None  # set when read back

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.certificate).hexdigest()


class CertificateHistory:
    """The ``certificate_history`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def remember(self, seen: Iterable[SeenCertificate], at: datetime) -> int:
        """Store those not stored yet, in one transaction; how many were new."""
        wanted = {(c.party, c.role, c.digest): c for c in seen}

        def work(tx: Tx) -> int:
            table = CERTIFICATE_HISTORY
            query = core_select(table.c.party, table.c.role, table.c.digest)
            known = {(party, role, digest) for party, role, digest in tx.conn.execute(query)}
            new = [(key, c) for key, c in wanted.items() if key not in known]
            if new:
                tx.conn.execute(
                    insert(CERTIFICATE_HISTORY),
                    [
                        {
                            "party": c.party,
                            "role": c.role,
                            "digest": digest,
                            "certificate": c.certificate,
                            "first_seen": at,
                        }
                        for (_, _, digest), c in new
                    ],
                )
            return len(new)

        if not wanted:
            return 0
        return await self.db.write(work)

    async def all(self) -> list[SeenCertificate]:
        """Every certificate remembered, oldest first."""

        async def work() -> list[SeenCertificate]:
            table = CERTIFICATE_HISTORY
            query = core_select(table).order_by(
                table.c.first_seen, table.c.party, table.c.role, table.c.digest
            )
            async with self.db.engine.connect() as conn:
                return [
                    SeenCertificate(r.party, r.role, bytes(r.certificate), as_utc(r.first_seen))
                    for r in await conn.execute(query)
                ]

        return await self.db.run(work)
