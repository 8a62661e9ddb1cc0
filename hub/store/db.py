"""The store: the one seam between the hub's procedures and its database.

``Store`` holds the database (hub/store/engine.py) and one part for each job: ``outbox`` (what
this hub sends), ``inbound`` (what partners sent), ``trail`` (the audit log) and ``views``
(read-only listings). Every method of a part is one transaction, or takes the caller's (the
``*_in`` methods, for group commits), and every database failure leaves it as a ``StoreError``.
The store knows nothing of gRPC or signatures; callers hand it values.
"""

from __future__ import annotations

from hub.store.engine import Database
from hub.store.inbound import InboundStore
from hub.store.outbox import OutboxStore
from hub.store.trail import TrailStore
from hub.store.views import Views


class Store:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.trail = TrailStore(self.db)
        self.outbox = OutboxStore(self.db, self.trail)
        self.inbound = InboundStore(self.db, self.trail)
        self.views = Views(self.db)

    async def create_all(self) -> None:
        await self.db.create_all()

    async def probe(self) -> None:
        """A StoreError unless the database answers now (``Database.probe``)."""
        await self.db.probe()

    async def close(self) -> None:
        await self.db.close()
