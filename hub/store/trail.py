"""The trail in the database: entries appended in the caller's transaction, the stored
perfect-subtree hashes (hub/trail/tree.py) they come with, signed checkpoints (a trail key's
hand-over among them: hub/trail/handover.py), and the auditors' queries and proofs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import insert
from sqlalchemy import select as core_select
from sqlmodel import col, select

from hub.core.errors import StoreError
from hub.core.limits import DETAIL_CHARS
from hub.store import rawsql
from hub.store.engine import Database, utc_time
from hub.store.rawsql import Raw, TrailTail, Tx
from hub.store.schema import (
    CHECKPOINT,
    MAX_INDEXED_KEY,
    MAX_STORED_TRAIL,
    TRAIL,
    TRAIL_KEY,
    TrailCheckpoint,
    TrailQuery,
    node_key,
    node_of,
    utcnow,
    values_of,
)
from hub.trail import events as trail
from hub.trail import handover, merkle
from hub.trail import tree as treestore

# Advisory lock key for trail appends (PostgreSQL): one transaction at a time sequences the trail.
TRAIL_LOCK = int.from_bytes(b"CHUBTRAL", "big") & 0x7FFFFFFFFFFFFFFF
# A trail entry's columns, in the order ``append_in`` builds its rows.
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


class TrailSql:
    """The trail tables' statements on the hot path, as plain SQL (hub/store/rawsql.py): names
    and placeholders only; values always travel as parameters."""

    def __init__(self) -> None:
        ins = rawsql.insert
        self.insert_trail = ins("trail_entry", TRAIL_INSERT)
        self.insert_trail_key = ins("trail_key", ("name", "value", "idx"))
        self.insert_trail_node = ins("trail_node", ("key", "hash"))
        self.trail_size = "SELECT coalesce(max(idx) + 1, 0) FROM trail_entry"
        self.trail_lock = f"SELECT pg_advisory_xact_lock({TRAIL_LOCK})"

    @staticmethod
    def trail_nodes(count: int) -> str:
        marks = rawsql.marks(count)
        return f"SELECT key, hash FROM trail_node WHERE key IN ({marks})"  # noqa: S608

    @staticmethod
    def leaf_hashes(count: int) -> str:
        marks = rawsql.marks(count)
        return f"SELECT idx, leaf_hash FROM trail_entry WHERE idx IN ({marks})"  # noqa: S608


# the latest "config-changed" leaves: what the hub last started or reloaded with is the first
# that is not a trail key's hand-over (those are rare: a few in a row at most)
_LAST_CONFIG = (
    core_select(TRAIL.c.idx, TRAIL.c.leaf)
    .where(TRAIL.c.kind == "config-changed")
    .order_by(TRAIL.c.idx.desc())
    .limit(16)
)
# the hand-over leaves, found through the business-key index (hub/trail/handover.py)
_HANDOVERS = (
    core_select(TRAIL_KEY.c.idx)
    .where(TRAIL_KEY.c.name == handover.INDEX_KEY)
    .order_by(TRAIL_KEY.c.idx)
)
_NEWEST_NOTE = (
    core_select(CHECKPOINT.c.size, CHECKPOINT.c.root, CHECKPOINT.c.note)
    .order_by(CHECKPOINT.c.size.desc())
    .limit(1)
)


def _config_digest(rows: Sequence[tuple[int, bytes]]) -> tuple[int, bytes] | None:
    """The index and digest of the newest config-changed leaf that is not a hand-over."""
    for index, leaf in rows:
        event = trail.decode(bytes(leaf))
        if not handover.is_handover_leaf(event.detail):
            return int(index), event.config_digest
    return None


class TrailStore:
    """The trail tables (``trail_entry``, ``trail_key``, ``trail_node``,
    ``trail_checkpoint``)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.sql = TrailSql()
        # the trail as the last committed transaction left it (its size and frontier), so an
        # append reads nothing but the size, which tells whether this is still the tail
        self.tail: TrailTail | None = None
        db.committed.append(self._keep_tail)
        db.uncertain.append(self._forget_tail)

    def _keep_tail(self, tx: Tx) -> None:
        if tx.tail is not None and tx.tail.frontier is not None:
            self.tail = tx.tail

    def _forget_tail(self) -> None:
        """The last commit may or may not have happened: the next append reads the tail."""
        self.tail = None

    def size_in(self, tx: Tx) -> int:
        """The trail's size, for a transaction about to append: on PostgreSQL it first takes
        the trail lock, so one transaction at a time sequences the trail (SQLite's write lock
        does that by itself). The first call in a transaction reads it; later ones follow
        this transaction's own appends."""
        if tx.tail is None:
            if not self.db.is_sqlite:
                tx.rows(self.sql.trail_lock)
            size = int(tx.value(self.sql.trail_size))
            known = self.tail
            # what the last commit left is still the tail if nobody appended since (another
            # replica on PostgreSQL); the size tells, because the trail only grows
            tx.tail = TrailTail(size, known.frontier if known and known.size == size else None)
        return tx.tail.size

    def append_in(self, tx: Tx, events: Sequence[trail.Event]) -> int:
        """Append one leaf per event, in order, with the tree nodes they complete; returns the
        index of the first."""
        size = self.size_in(tx)
        if not events:
            return size
        assert tx.tail is not None  # noqa: S101 - set by size_in
        if size + len(events) > MAX_STORED_TRAIL:
            raise StoreError(f"the trail cannot grow past {MAX_STORED_TRAIL} entries")
        leaves = [trail.encode(e) for e in events]
        frontier = tx.tail.frontier
        if frontier is None:
            frontier = self.read_nodes(tx, treestore.frontier_keys(size))
        nodes = treestore.append_many(size, [leaf.hash for leaf in leaves], frontier)
        sql, time = self.sql, self.db.time
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

    async def append(self, events: Sequence[trail.Event]) -> int:
        """Append events in one transaction of their own (events that describe no stored
        data: benchmarks, operators' notes); returns the index of the first."""
        return await self.db.write(lambda tx: self.append_in(tx, events))

    def head_in(self, tx: Tx) -> tuple[int, bytes]:
        """The size and root of the trail with this transaction's appends so far, from the
        frontier it carries (one hash per set bit of the size)."""
        tail = tx.tail
        if tail is None or tail.frontier is None:
            raise StoreError("no trail append in this transaction yet: no tree head to sign")
        return tail.size, treestore.tree_root(tail.size, tail.frontier)

    def read_nodes(self, raw: Raw, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Tree nodes by (level, index): leaf hashes from trail_entry, the rest from
        trail_node, each found through its table's primary key."""
        found: dict[tuple[int, int], bytes] = {}
        leaves = [index for level, index in keys if level == 0]
        inner = [key for key in keys if key[0] > 0]
        for part in rawsql.chunks(leaves):
            for index, value in raw.rows(self.sql.leaf_hashes(len(part)), part):
                found[(0, index)] = bytes(value)
        for part in rawsql.chunks(inner):
            params = [node_key(level, index) for level, index in part]
            for key, value in raw.rows(self.sql.trail_nodes(len(part)), params):
                found[node_of(key)] = bytes(value)
        return found

    async def sign_checkpoint(
        self,
        sign: Callable[[int, bytes], bytes],
        prepare: Callable[[bytes | None], Sequence[trail.Event]] | None = None,
    ) -> TrailCheckpoint | None:
        """Sign a checkpoint of the trail as it is now, if it grew since the last one; None if
        it did not. ``sign(size, root)`` returns the signed note. ``prepare(newest note)``,
        called first in the same transaction with the newest signed note (None before the
        first), may raise to sign nothing, or return events to append before the tree head
        is taken (a trail key's hand-over leaf), so that the checkpoint covers them. The new
        root must be consistent with the last signed one (a consistency proof from the
        stored tree that verifies), or nothing is signed: the hub never signs two
        inconsistent checkpoints."""

        def work(tx: Tx) -> TrailCheckpoint | None:
            conn = tx.conn
            size = self.size_in(tx)  # on PostgreSQL, appends wait until this is done
            last = conn.execute(_NEWEST_NOTE).first()
            old_size, old_root = (last.size, bytes(last.root)) if last else (0, b"")
            if prepare is not None:
                first = prepare(bytes(last.note) if last else None)
                if first:
                    self.append_in(tx, first)
                    size = self.size_in(tx)
            if size == old_size:
                return None
            keys = treestore.root_keys(size)
            if old_size:
                keys = keys + treestore.consistency_keys(old_size, size)
            nodes = self.read_nodes(tx, list(dict.fromkeys(keys)))
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
                insert(CHECKPOINT), [values_of(checkpoint, ("size", "root", "note", "signed_at"))]
            )
            return checkpoint

        return await self.db.run(lambda: self.db.transaction(work))

    async def record_config(self, digest: bytes, at: datetime, detail: str) -> bool:
        """Append a "config-changed" leaf unless the last one names the same digest; True if
        one was appended."""

        def work(tx: Tx) -> bool:
            conn = tx.conn
            self.size_in(tx)  # takes the trail lock on PostgreSQL
            last = _config_digest(conn.execute(_LAST_CONFIG).all())
            if last is not None and last[1] == digest:
                return False
            event = trail.Event(
                "config-changed", at, config_digest=digest, detail=detail[:DETAIL_CHARS]
            )
            self.append_in(tx, [event])
            return True

        return await self.db.run(lambda: self.db.transaction(work))

    async def last_config(self) -> tuple[int, bytes] | None:
        """The index and config digest of the latest "config-changed" leaf, if any."""

        async def work() -> tuple[int, bytes] | None:
            async with self.db.engine.connect() as conn:
                return _config_digest((await conn.execute(_LAST_CONFIG)).all())

        return await self.db.run(work)

    async def handovers(self) -> list[tuple[TrailCheckpoint, int, bytes]]:
        """Each trail key's hand-over, oldest first: the hand-over checkpoint, and the index
        and bytes of the leaf recording it (its last entry). A leaf without its checkpoint
        (none signed at the next size) is left out: that is no hand-over."""

        async def work() -> list[tuple[TrailCheckpoint, int, bytes]]:
            async with self.db.engine.connect() as conn:
                indexes = [int(i) for i in (await conn.execute(_HANDOVERS)).scalars()]
            found = []
            for index in indexes:
                point = await self.checkpoint_at(index + 1)
                leaf = await self.entry(index)
                if point is not None and leaf is not None:
                    found.append((point, index, leaf))
            return found

        return await self.db.run(work)

    async def checkpoints(self) -> list[TrailCheckpoint]:
        async def work() -> list[TrailCheckpoint]:
            async with self.db.session() as s:
                query = select(TrailCheckpoint).order_by(col(TrailCheckpoint.size))
                return list((await s.exec(query)).all())

        return await self.db.run(work)

    async def size(self) -> int:
        async def work() -> int:
            async with self.db.engine.connect() as conn:
                return int((await conn.exec_driver_sql(self.sql.trail_size)).scalar_one())

        return await self.db.run(work)

    async def leaves(self, start: int = 0, end: int | None = None) -> list[bytes]:
        """The stored leaves with index in [start, end), in order."""

        async def work() -> list[bytes]:
            query = core_select(TRAIL.c.leaf).where(TRAIL.c.idx >= start).order_by(TRAIL.c.idx)
            if end is not None:
                query = query.where(TRAIL.c.idx < end)
            async with self.db.engine.connect() as conn:
                return [bytes(leaf) for leaf in (await conn.execute(query)).scalars()]

        return await self.db.run(work)

    async def records(self, start: int, end: int) -> list[tuple[int, bytes, bytes]]:
        """(index, leaf, stored leaf hash) of the entries with index in [start, end), in
        order: what an export holds (hub/trail/verify.py)."""

        async def work() -> list[tuple[int, bytes, bytes]]:
            query = (
                core_select(TRAIL.c.idx, TRAIL.c.leaf, TRAIL.c.leaf_hash)
                .where(TRAIL.c.idx >= start, TRAIL.c.idx < end)
                .order_by(TRAIL.c.idx)
            )
            async with self.db.engine.connect() as conn:
                return [(int(i), bytes(leaf), bytes(h)) for i, leaf, h in await conn.execute(query)]

        return await self.db.run(work)

    async def query(self, query: TrailQuery) -> list[tuple[int, bytes]]:
        """(index, leaf) of the entries matching ``query``, one page, in index order (newest
        first unless ``oldest_first``). Pages are keyed by index, so appends between pages
        neither repeat nor skip an entry."""
        c = TRAIL.c
        statement = core_select(c.idx, c.leaf)
        if query.since is not None:
            statement = statement.where(c.at >= utc_time(query.since))
        if query.until is not None:
            statement = statement.where(c.at < utc_time(query.until))
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
                        TRAIL_KEY.c.name == name, TRAIL_KEY.c.value == value[:MAX_INDEXED_KEY]
                    )
                )
            )
        if query.after is not None:
            statement = statement.where(
                c.idx > query.after if query.oldest_first else c.idx < query.after
            )
        statement = statement.order_by(c.idx if query.oldest_first else c.idx.desc())

        async def work() -> list[tuple[int, bytes]]:
            async with self.db.engine.connect() as conn:
                rows = await conn.execute(statement.limit(query.limit))
                return [(int(i), bytes(leaf)) for i, leaf in rows]

        return await self.db.run(work)

    async def entry(self, index: int) -> bytes | None:
        """The leaf at ``index``, or None if there is none."""
        found = await self.records(index, index + 1)
        return found[0][1] if found else None

    async def checkpoint_at(self, size: int | None = None) -> TrailCheckpoint | None:
        """The checkpoint signed at ``size``, or the latest if ``size`` is None."""

        async def work() -> TrailCheckpoint | None:
            async with self.db.session() as s:
                query = select(TrailCheckpoint)
                if size is None:
                    query = query.order_by(col(TrailCheckpoint.size).desc()).limit(1)
                else:
                    query = query.where(TrailCheckpoint.size == size)
                return (await s.exec(query)).first()

        return await self.db.run(work)

    async def nodes(self, keys: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        """Stored tree nodes by (level, index), fetched in one query (hub/trail/tree.py names
        the ones a root or proof needs)."""

        async def work() -> dict[tuple[int, int], bytes]:
            if not keys:
                return {}
            async with self.db.engine.connect() as conn:
                return await conn.run_sync(
                    lambda c: self.read_nodes(Raw(c, self.db.numbered), keys)
                )

        return await self.db.run(work)

    async def root(self, size: int) -> bytes:
        return treestore.tree_root(size, await self.nodes(treestore.root_keys(size)))

    async def inclusion(self, index: int, size: int) -> list[bytes]:
        nodes = await self.nodes(treestore.inclusion_keys(index, size))
        return treestore.inclusion_proof(index, size, nodes)

    async def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        nodes = await self.nodes(treestore.consistency_keys(old_size, new_size))
        return treestore.consistency_proof(old_size, new_size, nodes)
