"""The store's transactions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from hub.store.db import Store
from hub.store.schema import (
    Accepted,
    InboundRow,
    Incoming,
    OutboundMessage,
    ReceiptRecord,
    Settlement,
)

NOW = datetime.now(UTC)


def outbound(message_id: str, recipient: str = "NZ") -> OutboundMessage:
    return OutboundMessage(
        message_id=message_id,
        recipient=recipient,
        body_type="t",
        envelope=b"env-" + message_id.encode(),
        envelope_digest=b"d" * 32,
        created_at=NOW,
    )


def inbound(message_id: str, sender: str = "CN", digest: bytes = b"d" * 32) -> InboundRow:
    return InboundRow(
        message_id=message_id,
        sender=sender,
        body_type="t",
        body=b"b",
        envelope_digest=digest,
        received_at=NOW,
    )


def signer(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
    return [b"receipt-" + r.message_id.encode() for r in rows]


async def accept(store: Store, rows: list[InboundRow], sign: Any) -> list[Accepted]:
    return await store.inbound.accept([Incoming(r) for r in rows], sign)


async def test_outbox_lifecycle(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        await store.outbox.enqueue([outbound("m1"), outbound("m2", "SG")])
        due = await store.outbox.due(NOW + timedelta(seconds=1), 10)
        assert {d.message_id for d in due} == {"m1", "m2"}
        m1 = next(d for d in due if d.message_id == "m1")
        m2 = next(d for d in due if d.message_id == "m2")
        await store.outbox.record_failure(
            [m2.entry_id], "UNAVAILABLE: down", NOW + timedelta(minutes=1)
        )
        await store.outbox.record_receipts(
            [
                Settlement(
                    m1,
                    ReceiptRecord(
                        message_id="m1",
                        receiver="NZ",
                        outcome="accepted",
                        signed_receipt=b"r",
                        received_at=NOW,
                    ),
                )
            ]
        )
        assert [d.message_id for d in await store.outbox.due(NOW + timedelta(seconds=1), 10)] == []
        [entry] = await store.views.outbox()
        assert entry.attempts == 1 and entry.last_error == "UNAVAILABLE: down"
        rows = {
            m.message_id: (m.status, r.outcome if r else None)
            for m, r in await store.views.outbound()
        }
        assert rows == {"m1": ("delivered", "accepted"), "m2": ("queued", None)}
    finally:
        await store.close()


async def test_inbound_dedup_and_receipt_in_same_transaction(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        [first] = await accept(store, [inbound("m1")], signer)
        assert first.fresh and first.row.signed_receipt == b"receipt-m1"
        # the same sender and id again, also twice in one call: the first receipt, no new row
        again = await accept(store, [inbound("m1"), inbound("m2"), inbound("m2")], signer)
        assert [(a.fresh, a.row.message_id) for a in again] == [
            (False, "m1"),
            (True, "m2"),
            (False, "m2"),
        ]
        assert again[0].row.signed_receipt == b"receipt-m1"
        assert again[1].row.signed_receipt == again[2].row.signed_receipt == b"receipt-m2"
        # the same id from another sender is another message
        [other] = await accept(store, [inbound("m1", sender="SG")], signer)
        assert other.fresh
        assert len(await store.views.inbound()) == 3
    finally:
        await store.close()


async def test_failed_signing_stores_nothing(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)

        def broken(_: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            raise RuntimeError("HSM unavailable")

        with pytest.raises(RuntimeError):
            await accept(store, [inbound("m1")], broken)
        assert await store.views.inbound() == []
    finally:
        await store.close()


async def test_acknowledgement_only_moves_forward(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        assert await store.inbound.acknowledged("risk") == 0
        for i in range(3):
            await accept(store, [inbound(f"m{i}")], signer)
        ids = [r.id or 0 for r in await store.views.inbound()]
        assert await store.inbound.acknowledge("risk", ids[1]) == ids[1]
        assert await store.inbound.acknowledge("risk", ids[0]) == ids[1]  # never back
        assert await store.inbound.acknowledged("risk") == ids[1]
        assert [r.message_id for r in await store.inbound.after(ids[0], 10)] == ["m1", "m2"]
        # a mistaken acknowledgement beyond what arrived cannot skip later messages
        assert await store.inbound.acknowledge("risk", 10**9) == ids[2]
        await accept(store, [inbound("m3")], signer)
        later = await store.inbound.after(await store.inbound.acknowledged("risk"), 10)
        assert [r.message_id for r in later] == ["m3"]
    finally:
        await store.close()


async def test_subscriber_cursor_never_skips_concurrent_inserts(store_url: str) -> None:
    """Ids must become visible in order, or a reader moving its cursor would skip a row.

    A race detector: with PostgreSQL's advisory lock removed it failed in three runs of four
    here; with the lock it has not failed.
    """
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        seen: list[str] = []
        writers_done = asyncio.Event()

        async def reader() -> None:
            cursor = 0
            while True:
                finished = writers_done.is_set()
                rows = await store.inbound.after(cursor, 1000)
                for row in rows:
                    seen.append(row.message_id)
                    cursor = row.id or cursor
                if finished and not rows:
                    return
                await asyncio.sleep(0)

        task = asyncio.create_task(reader())
        ids = [f"m{i}" for i in range(200)]

        def signer(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
            return [b"r"] * len(rows)

        def linger(conn: Any) -> None:
            # hold each transaction open for a moment between the insert that assigns the id
            # and the commit, so that on PostgreSQL later ids could commit first
            if store.db.is_sqlite:
                time.sleep(random.uniform(0, 0.002))
            else:
                conn.exec_driver_sql(f"SELECT pg_sleep({random.uniform(0, 0.01):.4f})")

        engine = store.db._sync_engine if store.db.is_sqlite else store.db.engine.sync_engine
        assert engine is not None
        event.listen(engine, "commit", linger)
        await asyncio.gather(*(accept(store, [inbound(i)], signer) for i in ids))
        writers_done.set()
        await asyncio.wait_for(task, 30)
        assert sorted(seen) == sorted(ids)
    finally:
        await store.close()


async def test_a_late_second_settlement_touches_no_other_entry(store_url: str) -> None:
    """A frame can be settled twice (resent after a broken stream, answered twice); the
    second settlement must not remove a newer message's entry."""
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        await store.outbox.enqueue([outbound("m1")])
        [m1] = await store.outbox.due(NOW + timedelta(seconds=1), 10)
        record = ReceiptRecord(
            message_id="m1", receiver="NZ", outcome="accepted", signed_receipt=b"r", received_at=NOW
        )
        await store.outbox.record_receipts([Settlement(m1, record)])
        await store.outbox.enqueue([outbound("m2")])
        await store.outbox.record_receipts([Settlement(m1, record)])  # late, again
        [m2] = await store.outbox.due(NOW + timedelta(seconds=1), 10)
        assert m2.message_id == "m2" and m2.entry_id != m1.entry_id  # ids are not reused
        assert [e.outbound_id for e in await store.views.outbox()] == [m2.outbound_id]
    finally:
        await store.close()


async def test_sqlite_commits_never_checkpoint_and_the_hub_checkpoints_beside_them(
    tmp_path: Path,
) -> None:
    """A checkpoint inside a commit stalls it; the hub's connections leave the log alone, and
    Database.copy_wal copies it into the database while writers go on."""
    path = tmp_path / "hub.db"
    store = Store(f"sqlite+aiosqlite:///{path}")
    try:
        await store.prepare(create=True)
        await store.db.copy_wal()
        empty = path.stat().st_size
        for i in range(100):
            await store.outbox.enqueue([outbound(f"m{i}-{j}") for j in range(40)])
        assert path.with_name("hub.db-wal").stat().st_size > 1000 * 4096
        before = path.stat().st_size
        assert before == empty  # past SQLite's automatic checkpoint, and none ran
        await store.db.copy_wal()
        assert path.stat().st_size > before  # the pages are in the database now
        with sqlite3.connect(path) as db:
            busy, logged, copied = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert (busy, logged) == (0, copied)  # nothing was left to copy
    finally:
        await store.close()


async def test_a_cancelled_writer_is_cancelled_and_the_store_goes_on(store_url: str) -> None:
    """A task cancelled while its transaction commits must end cancelled (a hub that stops
    cancels its housekeeping and waits for it), and the next transaction must find the
    writer connection free. Found as a hang at shutdown: a cancellation that arrived just as
    the commit finished was dropped."""
    store = Store(store_url)
    rng = random.Random(7)
    try:
        await store.prepare(create=True)
        for i in range(60):

            async def writing(n: int = i) -> None:
                while True:
                    await store.outbox.enqueue([outbound(f"c{n}-{time.monotonic_ns()}")])

            task = asyncio.create_task(writing())
            await asyncio.sleep(rng.uniform(0, 0.004))
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert done and task.cancelled(), f"round {i}: the cancellation was lost"
        [entry] = await store.outbox.enqueue([outbound("after")])
        assert entry.message_id == "after"
        assert len(await store.trail.leaves()) == len(await store.views.outbound())
    finally:
        await store.close()


async def test_sqlite_log_starts_again_while_a_writer_keeps_committing(tmp_path: Path) -> None:
    """Checkpoints beside a busy writer must still let SQLite restart its write-ahead log;
    one-step PASSIVE checkpoints let it grow for as long as the writer never pauses."""
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}")
    store.db.wal_restart_pages = 40
    wal = tmp_path / "hub.db-wal"
    try:
        await store.prepare(create=True)
        stop = asyncio.Event()
        restarts = 0

        async def checkpoints() -> None:
            nonlocal restarts
            while not stop.is_set():
                restarts += await store.db.copy_wal()
                await asyncio.sleep(0.005)

        running = asyncio.create_task(checkpoints())
        largest = 0
        for i in range(400):  # about 2,000 pages of log in all
            await store.outbox.enqueue([outbound(f"w{i}-{j}") for j in range(8)])
            largest = max(largest, wal.stat().st_size)
        stop.set()
        await running
        assert restarts >= 3
        assert largest < 400 * 4096, f"the log grew to {largest} bytes"
    finally:
        await store.close()


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, 7, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=timezone(timedelta(hours=8))),
        datetime(2026, 1, 2, 3, 4, 5, 1),  # naive: taken as UTC, as everything the store writes
    ],
)
def test_plain_sql_writes_times_as_sqlalchemy_does(moment: datetime) -> None:
    """The hot paths write SQLite times themselves; SQLAlchemy must read them back the same."""
    from sqlalchemy.dialects.sqlite import DATETIME

    from hub.store.engine import sqlite_time

    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    assert sqlite_time(moment) == DATETIME().bind_processor(None)(utc.replace(tzinfo=None))


def test_a_row_type_names_every_column_its_table_is_written_with() -> None:
    """Hot-path INSERTs take their columns from the table's class and their values by name
    from the row type (hub/store/schema.py ``Writer``): a row type without a field for a new
    column fails when the module loads."""
    from dataclasses import dataclass

    from hub.store.schema import INBOUND, INBOUND_WRITER, OUTBOUND, OUTBOUND_WRITER, Writer

    assert OUTBOUND_WRITER.columns == tuple(c.name for c in OUTBOUND.columns)
    assert INBOUND_WRITER.columns == tuple(c.name for c in INBOUND.columns if c.name != "id")

    @dataclass
    class Partial:
        message_id: str

    with pytest.raises(TypeError, match="Partial lacks"):
        Writer(OUTBOUND, Partial)
