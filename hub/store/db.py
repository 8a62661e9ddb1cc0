"""The store: the one seam between the hub's procedures and its database.

``Store`` holds the database (hub/store/engine.py) and one part for each job: ``outbox`` (what
this hub sends), ``inbound`` (what partners sent), ``trail`` (the audit log), ``learned``
(partners' signing certificates learned during their key rotations), ``certificates``
(every anchor and signing certificate a configuration named) and ``views`` (read-only
listings). Every method of a part is one transaction, or takes the caller's (the
``*_in`` methods, for group commits), and every database failure leaves it as a ``StoreError``.
The store knows nothing of gRPC or signatures; callers hand it values.
"""

from __future__ import annotations

from hub.config import StoreSettings
from hub.core.errors import StoreError
from hub.store.certificates import CertificateHistory
from hub.store.engine import UPGRADE, Database
from hub.store.inbound import InboundStore
from hub.store.learned import LearnedKeyStore
from hub.store.outbox import OutboxStore
from hub.store.registry import Registry
from hub.store.trail import TrailStore
from hub.store.views import Views


class Store:
    def __init__(self, url: str | StoreSettings) -> None:
        self.db = Database(url)
        self.trail = TrailStore(self.db)
        self.outbox = OutboxStore(self.db, self.trail)
        self.registry = Registry(self.db)
        self.inbound = InboundStore(self.db, self.trail, self.registry)
        self.learned = LearnedKeyStore(self.db, self.trail)
        self.certificates = CertificateHistory(self.db)
        self.views = Views(self.db)

    async def prepare(self, *, create: bool = False, upgrade_hint: str = UPGRADE) -> None:
        """Refuse a database not at this code's schema revision; ``create``: give an empty one
        the schema (hub/store/migrate.py)."""
        await self.db.prepare(create=create, upgrade_hint=upgrade_hint)

    @classmethod
    async def existing(cls, url: str | StoreSettings, *, upgrade_hint: str = UPGRADE) -> Store:
        """A store on a database that is there and at this code's schema revision, for the
        commands that read or change its data, never its schema: a SQLite file that does not
        exist is not made, and a database behind or ahead is refused (``SchemaError``)."""
        store = cls(url)
        path = store.db.sqlite_file
        try:
            if path is not None and not path.exists():
                raise StoreError(
                    f"no hub database at {path}: start the hub, or run `{upgrade_hint}`",
                    reason="store-unavailable",
                )
            await store.prepare(upgrade_hint=upgrade_hint)
        except BaseException:
            await store.close()
            raise
        return store

    async def probe(self) -> None:
        """A StoreError unless the database answers now (``Database.probe``)."""
        await self.db.probe()

    async def close(self) -> None:
        self.registry.close()
        await self.db.close()
