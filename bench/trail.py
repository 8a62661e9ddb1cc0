"""The tamper-evident trail: appends as it grows, and proofs at 10^4, 10^5 and 10^6 entries.

    python bench/trail.py [--sizes 10000,100000,1000000 | --quick] [--batch 64] [--proofs 1000]
                          [--store sqlite|postgres] [--json bench/trail-latest.json]

Grows one trail (the RFC 6962 Merkle log in SQL, hub/store/trail.py and hub/trail/tree.py) from
empty to the largest of ``--sizes`` through ``store.trail.append``, the hub's own append path:
one transaction per call, ``--batch`` events each (64 by default, like the hub's group
commit). The events are what the hub records for AEO status updates: "received", "queued" and
"delivered" in turn, UUIDv7 message ids, a partner as sender or recipient, a 32-byte envelope
digest and an AEO id as business key. On SQLite a task calls ``Database.copy_wal`` every
0.25 s, as the hub's delivery loop does (the store turns SQLite's own checkpoints off).

It measures:

- appends per second, from the time spent in ``store.trail.append`` only (the events of a batch are
  made before its call), over the ``--window`` appends (10,000) just before each size, and
  over every such window of the run: flat figures mean appending does not slow as it grows;
  with the p50 and p99 of one call (one commit);
- when the trail reaches each size, inclusion-proof latency for ``--proofs`` random indexes,
  from the call to ``store.trail.inclusion(index, size)`` to the returned proof, with the
  proof length and the number of stored nodes it read (``treestore.inclusion_keys``);
- consistency-proof latency between consecutive sizes (``store.trail.consistency``), called
  ``--proofs / 10`` times;
- database bytes per entry at each size, less what the empty database held (SQLite: pages in
  use; PostgreSQL: pg_database_size), and per table at the largest size.

Every proof is checked with hub.trail.merkle alone: the bench rebuilds each entry from its index,
hashes it (hub.trail.events.encode, hub.trail.merkle.leaf_hash) and keeps its own root with
merkle.RootBuilder, so a proof passes only if it leads that leaf to a root computed without the
store; ``store.trail.root(size)`` must equal it too. Any failure is counted and the bench exits
with status 1.

The default store is a SQLite file in a temporary folder; ``--store postgres`` runs on a fresh
database on PostgreSQL (``--postgres``, trust auth), dropped afterwards. Everything shares this
machine; reads hit the OS page cache (the database is written in the same run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

from hub.store.db import Store
from hub.trail import merkle
from hub.trail import tree as treestore
from hub.trail.events import Event, encode

ROOT = Path(__file__).resolve().parents[1]
POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"
WAL_COPY_SECONDS = 0.25  # hub/app/delivery.py's
PARTNERS = ("NZ", "SG", "JP", "KR", "AU", "GB", "CA", "US")
BODY_TYPE = "customs_hub.v1.AeoStatus"
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
# a message is delivered this many messages after it was queued (its receipt comes later)
DELIVERY_LAG = 8


# --- the events -----------------------------------------------------------------------------


def _message(kind: str, number: int) -> tuple[str, bytes, int]:
    """(UUIDv7 message id, envelope digest, ms) of message ``number``, the same every time."""
    digest = hashlib.sha256(f"{kind}:{number}".encode()).digest()
    ms = int(START.timestamp() * 1000) + number * 2  # 500 messages a second, in each direction
    rand = int.from_bytes(digest[:10], "big")
    value = (ms << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) | (0b10 << 62)
    value |= rand & ((1 << 62) - 1)
    return str(uuid.UUID(int=value)), digest, ms


def event(index: int) -> Event:
    """Trail entry ``index`` as the hub would record it, rebuilt from the index alone (the
    verifier below makes its own leaves this way)."""
    number, step = divmod(index, 3)
    partner = PARTNERS[number % len(PARTNERS)]
    at = START + timedelta(microseconds=index * 667)
    if step == 0:  # a partner's AEO status update accepted
        message_id, digest, _ = _message("in", number)
        aeo = f"{partner}-AEO-{number % 1_000_000:06d}"
        return Event(
            "received",
            at,
            message_id=message_id,
            sender=partner,
            recipient="CN",
            body_type=BODY_TYPE,
            envelope_digest=digest,
            keys={"aeo": [aeo]},
        )
    if step == 2:  # the receipt of one queued a little earlier
        number = max(0, number - DELIVERY_LAG)
        partner = PARTNERS[number % len(PARTNERS)]
    message_id, digest, _ = _message("out", number)
    return Event(
        "queued" if step == 1 else "delivered",
        at,
        message_id=message_id,
        sender="CN",
        recipient=partner,
        body_type=BODY_TYPE,
        envelope_digest=digest,
        keys={"aeo": [f"CN-AEO-{number % 1_000_000:06d}"]},
        outcome="" if step == 1 else "accepted",
    )


# --- figures --------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Appends:
    """Appends just before the trail reached ``size``."""

    size: int
    window: int
    per_second: float
    batch_p50_ms: float
    batch_p99_ms: float
    batch_max_ms: float


@dataclass
class Latency:
    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    proof_hashes_mean: float
    proof_hashes_max: int
    nodes_read_mean: float
    nodes_read_max: int
    failures: int


@dataclass
class Checkpoint:
    size: int
    appends: Appends
    inclusion: Latency
    consistency_from: int = 0
    consistency: Latency | None = None
    db_bytes: int = 0  # in use, less what the empty database held (PostgreSQL's catalogs)
    files_bytes: int = 0  # SQLite: the database and its log on disk
    root_matches: bool = True

    @property
    def bytes_per_entry(self) -> float:
        return self.db_bytes / self.size


@dataclass
class Run:
    store: str
    batch: int
    window: int
    checkpoints: list[Checkpoint] = field(default_factory=list)
    windows: list[tuple[int, float]] = field(default_factory=list)  # (end size, appends/s)
    append_seconds: float = 0.0
    grow_seconds: float = 0.0
    wal_restarts: int = 0
    tables: dict[str, int] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(
            c.inclusion.failures
            + (c.consistency.failures if c.consistency else 0)
            + (not c.root_matches)
            for c in self.checkpoints
        )


def latency(
    seconds: list[float], proofs: list[list[bytes]], nodes: list[int], failures: int
) -> Latency:
    ms = [s * 1000 for s in seconds]
    lengths = [len(p) for p in proofs]
    return Latency(
        len(ms),
        percentile(ms, 0.5),
        percentile(ms, 0.99),
        max(ms),
        statistics.fmean(lengths),
        max(lengths),
        statistics.fmean(nodes),
        max(nodes),
        failures,
    )


# --- the stores -----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def sqlite_store() -> AsyncIterator[tuple[Store, Path]]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trail.db"
        store = Store(f"sqlite+aiosqlite:///{path}")
        try:
            yield store, path
        finally:
            await store.close()


@contextlib.asynccontextmanager
async def postgres_store(admin: str) -> AsyncIterator[tuple[Store, str]]:
    name = f"bench_trail_{os.getpid()}_{int(time.time())}"
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
        store = Store(f"{url}/{name}")
        try:
            yield store, name
        finally:
            await store.close()
    finally:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def sqlite_total(path: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        page = db.execute("PRAGMA page_size").fetchone()[0]
    files = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    return (pages - free) * page, files


class Sizes:
    """Database size, as the store holds it now."""

    def __init__(self, store: Store, where: Path | str) -> None:
        self.store = store
        self.where = where

    async def total(self) -> tuple[int, int]:
        """(bytes in use, bytes of files on disk; 0 on PostgreSQL)."""
        if isinstance(self.where, Path):
            return sqlite_total(self.where)  # a few pragmas and stats: not worth a thread
        async with self.store.db.engine.connect() as conn:
            result = await conn.exec_driver_sql("SELECT pg_database_size(current_database())")
            return int(result.scalar_one()), 0

    async def tables(self) -> dict[str, int]:
        """Bytes per table, indexes included (SQLite: from dbstat)."""
        if isinstance(self.where, Path):
            with contextlib.closing(sqlite3.connect(f"file:{self.where}?mode=ro", uri=True)) as db:
                rows = db.execute(
                    "SELECT coalesce(m.tbl_name, s.name), sum(s.pgsize) FROM dbstat s"
                    " LEFT JOIN sqlite_schema m ON m.name = s.name GROUP BY 1"
                ).fetchall()
        else:
            async with self.store.db.engine.connect() as conn:
                result = await conn.exec_driver_sql(
                    "SELECT relname, pg_total_relation_size(oid) FROM pg_class"
                    " WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
                rows = list(result.all())
        return {str(name): int(size) for name, size in rows if name.startswith("trail_")}


# --- the run --------------------------------------------------------------------------------


async def copy_wal(store: Store, run: Run) -> None:
    """Database.copy_wal beside the writer, as hub/app/delivery.py runs it."""
    while True:
        await asyncio.sleep(WAL_COPY_SECONDS)
        run.wal_restarts += await store.db.copy_wal()


async def inclusion(
    store: Store, size: int, count: int, root: bytes, rng: random.Random
) -> Latency:
    seconds, proofs, nodes, failures = [], [], [], 0
    for index in (rng.randrange(size) for _ in range(count)):
        start = time.perf_counter()
        proof = await store.trail.inclusion(index, size)
        seconds.append(time.perf_counter() - start)
        leaf = merkle.leaf_hash(encode(event(index)).data)
        failures += not merkle.verify_inclusion(leaf, index, size, proof, root)
        proofs.append(proof)
        nodes.append(len(treestore.inclusion_keys(index, size)))
    return latency(seconds, proofs, nodes, failures)


async def consistency(
    store: Store, old: tuple[int, bytes], new: tuple[int, bytes], count: int
) -> Latency:
    (old_size, old_root), (new_size, new_root) = old, new
    seconds, proofs, failures = [], [], 0
    for _ in range(count):
        start = time.perf_counter()
        proof = await store.trail.consistency(old_size, new_size)
        seconds.append(time.perf_counter() - start)
        failures += not merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
        proofs.append(proof)
    nodes = len(treestore.consistency_keys(old_size, new_size))
    return latency(seconds, proofs, [nodes] * count, failures)


async def measure(
    store: Store, sizes: Sizes, run: Run, targets: list[int], proofs: int, window: int
) -> None:
    await store.prepare(create=True)
    empty, _ = await sizes.total()
    housekeeping = asyncio.create_task(copy_wal(store, run)) if store.db.is_sqlite else None
    builder = merkle.RootBuilder()  # the verifier's own root, from its own leaves
    ends: list[int] = []  # trail size after each store.trail.append call
    took: list[float] = []  # seconds in that call
    previous: tuple[int, bytes] | None = None
    rng = random.Random(6962)
    size = 0
    started = time.perf_counter()
    try:
        for target in targets:
            while size < target:
                events = [event(size + i) for i in range(min(run.batch, target - size))]
                start = time.perf_counter()
                first = await store.trail.append(events)
                took.append(time.perf_counter() - start)
                if first != size:
                    raise RuntimeError(f"append returned {first} for an append at {size}")
                size += len(events)
                ends.append(size)
                for e in events:
                    builder.add(encode(e).hash)
            run.grow_seconds += time.perf_counter() - started
            root = builder.root()
            checkpoint = Checkpoint(
                size,
                appended(ends, took, size, min(window, size)),
                await inclusion(store, size, proofs, root, rng),
                root_matches=await store.trail.root(size) == root,
            )
            if previous is not None:
                checkpoint.consistency_from = previous[0]
                checkpoint.consistency = await consistency(
                    store, previous, (size, root), max(1, proofs // 10)
                )
            used, checkpoint.files_bytes = await sizes.total()
            checkpoint.db_bytes = used - empty
            run.checkpoints.append(checkpoint)
            report_checkpoint(checkpoint)
            previous = (size, root)
            started = time.perf_counter()
        run.tables = await sizes.tables()
    finally:
        if housekeeping is not None:
            housekeeping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await housekeeping
    run.append_seconds = sum(took)
    step = run.window = min(window, targets[-1])
    run.windows = [
        (end, appended(ends, took, end, step).per_second)
        for end in range(step, targets[-1] + 1, step)
    ]


def appended(ends: list[int], took: list[float], size: int, window: int) -> Appends:
    """The calls that took the trail from about ``size - window`` to ``size``: those that
    ended in (size - window, size], so the window starts where the call before them ended."""
    low = size - window
    calls = [t for e, t in zip(ends, took, strict=True) if low < e <= size]
    events = size - max((e for e in ends if e <= low), default=0)
    ms = [t * 1000 for t in calls]
    return Appends(
        size,
        events,
        events / sum(calls),
        percentile(ms, 0.5),
        percentile(ms, 0.99),
        max(ms),
    )


# --- reporting ------------------------------------------------------------------------------


def report_checkpoint(c: Checkpoint) -> None:
    a, i = c.appends, c.inclusion
    line = (
        f"{c.size:>9,} {a.per_second:>9,.0f} {a.batch_p50_ms:>6.2f} {a.batch_p99_ms:>6.2f}  "
        f"{i.p50_ms:>6.2f} {i.p99_ms:>6.2f} {i.max_ms:>6.1f} {i.proof_hashes_mean:>5.1f} "
        f"{i.nodes_read_mean:>5.1f}/{i.nodes_read_max:<3}"
    )
    if c.consistency is not None:
        k = c.consistency
        line += f" {k.p50_ms:>6.2f} {k.max_ms:>6.1f} {k.proof_hashes_max:>3}/{k.nodes_read_max:<3}"
    else:
        line += f" {'-':>6} {'-':>6} {'-':>7}"
    line += f" {c.bytes_per_entry:>7.0f}"
    bad = i.failures + (c.consistency.failures if c.consistency else 0) + (not c.root_matches)
    print(line + (f"  FAILED {bad}" if bad else ""), flush=True)


def header(machine: str, store: str, batch: int, proofs: int, window: int) -> None:
    print(f"trail on {store}, batches of {batch} per transaction; {machine}")
    print(
        f"appends/s: the {window:,} appends before each size, time in store.trail.append only; "
        f"proofs: {proofs} random indexes, verified with hub.trail.merkle"
    )
    print(
        f"{'':>9} {'appends':>9} {'batch ms':>13}  {'inclusion ms':>20} {'hashes':>5} "
        f"{'nodes':>9} {'consistency ms':>14} {'h/nod':>7} {'B/entry':>7}"
    )
    print(
        f"{'size':>9} {'per s':>9} {'p50':>6} {'p99':>6}  {'p50':>6} {'p99':>6} {'max':>6} "
        f"{'mean':>5} {'mean/max':>9} {'p50':>6} {'max':>6} {'max':>7} {'':>7}"
    )


def footer(run: Run) -> None:
    rates = [r for _, r in run.windows]
    total = run.checkpoints[-1].size
    print(
        f"appends/s over {len(rates)} windows of {run.window:,}: "
        f"first {rates[0]:,.0f}, min {min(rates):,.0f}, median {statistics.median(rates):,.0f}, "
        f"max {max(rates):,.0f}, last {rates[-1]:,.0f}"
    )
    print(
        f"{total:,} appends: {total / run.append_seconds:,.0f}/s in store.trail.append, "
        f"{run.grow_seconds:.0f} s in all with making and hashing the events"
        + (f"; {run.wal_restarts} WAL restarts" if run.store.startswith("SQLite") else "")
    )
    last = run.checkpoints[-1]
    per_table = ", ".join(f"{name} {size / total:.0f}" for name, size in sorted(run.tables.items()))
    files = f", files on disk {last.files_bytes / total:.0f}" if last.files_bytes else ""
    print(f"bytes per entry at {total:,}: {last.bytes_per_entry:.0f} ({per_table}){files}")
    if run.failures:
        print(f"VERIFICATION FAILED: {run.failures} proofs or roots did not verify")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="10000,100000,1000000",
        help="trail sizes to measure proofs at, comma-separated (the largest is grown to)",
    )
    parser.add_argument("--quick", action="store_true", help="sizes 1000,10000,100000")
    parser.add_argument("--batch", type=int, default=64, help="events per store.trail.append call")
    parser.add_argument("--proofs", type=int, default=1000, help="inclusion proofs per size")
    parser.add_argument("--window", type=int, default=10_000, help="appends per rate window")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres", default=POSTGRES, help="admin DSN for --store postgres")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "trail-latest.json")
    args = parser.parse_args()
    targets = sorted(
        {int(s) for s in ("1000,10000,100000" if args.quick else args.sizes).split(",")}
    )
    if not targets or targets[0] < 1 or args.batch < 1 or args.proofs < 1 or args.window < 1:
        parser.error("sizes, --batch, --proofs and --window must be positive")
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"

    async def go() -> Run:
        if args.store == "sqlite":
            label = f"SQLite {sqlite3.sqlite_version}, temporary file"
            opened = sqlite_store()
        else:
            conn = await asyncpg.connect(args.postgres)
            version = await conn.fetchval("SHOW server_version")
            await conn.close()
            label = f"PostgreSQL {version}, fresh database"
            opened = postgres_store(args.postgres)
        run = Run(label, args.batch, args.window)
        header(machine, label, args.batch, args.proofs, args.window)
        async with opened as (store, where):
            await measure(store, Sizes(store, where), run, targets, args.proofs, args.window)
        return run

    run = asyncio.run(go())
    footer(run)
    checkpoints_json = []
    for c in run.checkpoints:
        checkpoints_json.append(asdict(c) | {"bytes_per_entry": c.bytes_per_entry})
    args.json.write_text(
        json.dumps(
            {
                "machine": machine,
                "cpu_count": os.cpu_count(),
                "python": platform.python_version(),
                "date": datetime.now().astimezone().isoformat(timespec="seconds"),
                "store": run.store,
                "batch": run.batch,
                "proofs": args.proofs,
                "window": run.window,
                "appends_per_second": run.checkpoints[-1].size / run.append_seconds,
                "append_seconds": run.append_seconds,
                "grow_seconds": run.grow_seconds,
                "wal_restarts": run.wal_restarts,
                "failures": run.failures,
                "checkpoints": checkpoints_json,
                "windows": [{"size": s, "appends_per_second": r} for s, r in run.windows],
                "table_bytes": run.tables,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")
    if run.failures:
        sys.exit(1)


if __name__ == "__main__":
    main()
