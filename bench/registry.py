"""The registry's lookups at 10^6 AEO statuses, and what writing the registry adds to an inbound
AEO status.

    python bench/registry.py [--rows 1000000] [--lookups 20000] [--batches 500] [--write 4000]

Builds a SQLite store (the hub's own schema, migrations and all) in a temporary folder and
fills ``aeo_registry`` with ``--rows`` current AEO statuses issued by 5 partners, straight
through sqlite3 (not through the hub: a bulk insert, then the indexes), each with a serialised
AeoStatus of its own as its document. Then, on one core, with the rows in the OS page cache:

- single lookups: ``store.registry.operators(aeo_ids=[id])`` for ``--lookups`` random ids,
  each timed from the call to the returned records: p50 and p99; and the same for one TIN;
- batches: ``operators(aeo_ids=ids)`` with 100 random ids, ``--batches`` times: ids per second;
- each beside a bare sqlite3 ``SELECT`` of the same columns through the same index in the same
  run (the floor: the index's own cost and the driver's), as a ratio;
- ``--write N``: N inbound AEO statuses accepted through ``store.inbound.accept`` in commits
  of 64, as the hub's group commit takes them, with and without their registry rows, each
  into a fresh store: messages per second, and the time the registry adds per message.

The ids looked up are drawn at random over the whole registry, so the b-tree's pages are
reached at random, not in insert order. Targets (ADR 0012): single lookups p99 under 2 ms,
batches over 20,000 ids/s.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.core.messages import AeoStatus  # noqa: E402
from hub.core.registry import aeo_record  # noqa: E402
from hub.core.revisions import StateRef  # noqa: E402
from hub.pb.customs_hub.v1 import aeo_pb2  # noqa: E402
from hub.store.db import Store  # noqa: E402
from hub.store.engine import sqlite_time  # noqa: E402
from hub.store.registry import AEO_COLUMNS, AEO_FIELDS, AEO_WRITER  # noqa: E402
from hub.store.schema import InboundRow, Incoming  # noqa: E402

PARTIES = ("AU", "JP", "KR", "NZ", "SG")
BATCH = 100
COMMIT = 64  # messages per accept call, as the hub's inbound group commit


def aeo_id(n: int) -> str:
    party = PARTIES[n % len(PARTIES)]
    return f"{party}AEO{n:09d}"


def tin(n: int) -> str:
    return f"TIN{(n * 7919) % 10**12:012d}"


def status_of(n: int, revision: int = 1) -> AeoStatus:
    party = PARTIES[n % len(PARTIES)]
    return AeoStatus(
        issuing_administration=party,
        aeo_id=aeo_id(n),
        tin=tin(n),
        name=f"Operator {n} Trading Co Ltd",
        programme=aeo_pb2.AEO_PROGRAMME_SECURITY_AND_SAFETY,
        status=aeo_pb2.AEO_STANDING_VALID,
        valid_from="2025-03-01",
        revision=revision,
        country_code=party,
    )


def fill(path: Path, rows: int) -> float:
    """``rows`` statuses into aeo_registry by plain sqlite3; seconds taken."""
    start = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'aeo_registry'"
        " AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    at = sqlite_time(datetime(2026, 12, 1, tzinfo=UTC))
    insert = (
        f"INSERT INTO aeo_registry ({', '.join(AEO_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(AEO_COLUMNS))})"
    )

    def values(n: int) -> list[object]:
        record = aeo_record(status_of(n), f"m-{n}", n, datetime(2026, 12, 1, tzinfo=UTC))
        return AEO_WRITER.values(record, lambda _: at)

    # in primary key order (aeo_id, party): the table's b-tree is appended to, not split
    order = sorted(range(rows), key=aeo_id)
    for i in range(0, rows, 50_000):
        conn.executemany(insert, (values(n) for n in order[i : i + 50_000]))
    for _, sql in indexes:
        conn.execute(sql)
    conn.commit()
    conn.execute("ANALYZE")
    conn.close()
    return time.perf_counter() - start


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def lookups(
    store: Store, path: Path, rows: int, count: int, batches: int
) -> dict[str, float]:
    registry = store.registry
    rng = random.Random(18)
    bare = sqlite3.connect(f"file:{path}?mode=rw", uri=True)
    select = f"SELECT {', '.join(AEO_FIELDS)} FROM aeo_registry WHERE "
    ns = time.perf_counter_ns
    out: dict[str, float] = {}

    def timed_single(key: str, ids: list[str]) -> None:
        """The bare sqlite3 lookups of ``ids`` by ``key``: a warm pass, then a timed one."""
        floor: list[float] = []
        for measured in (False, True):
            for value in ids:
                t = ns()
                bare.execute(f"{select}{key} IN (?)", (value,)).fetchall()
                if measured:
                    floor.append((ns() - t) / 1e6)
        out[f"{key}_bare_p50_ms"] = percentile(floor, 0.5)
        out[f"{key}_bare_p99_ms"] = percentile(floor, 0.99)

    ids = [aeo_id(rng.randrange(rows)) for _ in range(count)]
    timed_single("aeo_id", ids)
    mine: list[float] = []
    for value in ids[: count // 10]:  # warm-up
        await registry.operators(aeo_ids=[value])
    for value in ids:
        t = ns()
        found = await registry.operators(aeo_ids=[value])
        mine.append((ns() - t) / 1e6)
        assert len(found) == 1, value
    out["aeo_id_p50_ms"] = percentile(mine, 0.5)
    out["aeo_id_p99_ms"] = percentile(mine, 0.99)
    tins = [tin(rng.randrange(rows)) for _ in range(count // 4)]
    timed_single("tin", tins)
    mine = []
    for value in tins:
        t = ns()
        found = await registry.operators(tins=[value])
        mine.append((ns() - t) / 1e6)
        assert found, value
    out["tin_p50_ms"] = percentile(mine, 0.5)
    out["tin_p99_ms"] = percentile(mine, 0.99)

    groups = [[aeo_id(rng.randrange(rows)) for _ in range(BATCH)] for _ in range(batches)]
    marks = ", ".join("?" * BATCH)
    statement = f"{select}aeo_id IN ({marks})"
    for group in groups[: batches // 10]:  # warm-up
        bare.execute(statement, group).fetchall()
        await registry.operators(aeo_ids=group)
    t = time.perf_counter()
    for group in groups:
        bare.execute(statement, group).fetchall()
    out["batch_bare_ids_per_s"] = batches * BATCH / (time.perf_counter() - t)
    t = time.perf_counter()
    for group in groups:
        found = await registry.operators(aeo_ids=group)
        assert len(found) == len(set(group))
    out["batch_ids_per_s"] = batches * BATCH / (time.perf_counter() - t)
    t = time.perf_counter()
    for group in groups:
        registry.operators_now(aeo_ids=group)
    out["batch_now_ids_per_s"] = batches * BATCH / (time.perf_counter() - t)
    bare.close()
    return out


def signer(rows: list[InboundRow], head: tuple[int, bytes]) -> list[bytes]:
    return [b"r" * 160 for _ in rows]  # about a signed receipt's size; signing is not timed


async def write_cost(folder: Path, messages: int) -> dict[str, float]:
    """Inbound AEO statuses per second through accept, without and with registry rows."""
    out: dict[str, float] = {}
    now = datetime.now(UTC)
    for registered in (False, True, False, True):  # twice each, alternating; the best kept
        path = folder / f"write-{registered}-{time.monotonic_ns()}.db"
        store = Store(f"sqlite+aiosqlite:///{path}")
        await store.prepare(create=True)
        try:
            batches = []
            for start in range(0, messages, COMMIT):
                batch = []
                for n in range(start, min(messages, start + COMMIT)):
                    status = status_of(n, revision=1 + n % 3)
                    message_id = f"0190b7c2-0000-7000-8000-{n:012d}"
                    row = InboundRow(
                        message_id=message_id,
                        sender=status.issuing_administration,
                        body_type=status.DESCRIPTOR.full_name,
                        body=status.SerializeToString(),
                        envelope_digest=n.to_bytes(32, "big"),
                        received_at=now + timedelta(microseconds=n),
                    )
                    ref = StateRef(row.sender, "aeo", status.aeo_id, status.revision)
                    record = aeo_record(status, message_id, 0, row.received_at)
                    batch.append(Incoming(row, ref, record if registered else None))
                batches.append(batch)
            t = time.perf_counter()
            for batch in batches:
                await store.inbound.accept(batch, signer)
            rate = messages / (time.perf_counter() - t)
        finally:
            await store.close()
        key = "with_registry_per_s" if registered else "without_registry_per_s"
        out[key] = max(out.get(key, 0.0), rate)
    out["added_us_per_message"] = (
        1e6 / out["with_registry_per_s"] - 1e6 / out["without_registry_per_s"]
    )
    return out


async def run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "registry.db"
        store = Store(f"sqlite+aiosqlite:///{path}")
        await store.prepare(create=True)
        await store.close()
        built = fill(path, args.rows)
        size = path.stat().st_size
        print(
            f"registry: {args.rows:,} AEO statuses of {len(PARTIES)} partners, built in "
            f"{built:.1f} s, {size / args.rows:.0f} bytes a row on disk "
            f"(Python {platform.python_version()}, SQLite {sqlite3.sqlite_version})"
        )
        store = Store(f"sqlite+aiosqlite:///{path}")
        try:
            figures = await lookups(store, path, args.rows, args.lookups, args.batches)
        finally:
            await store.close()
        f = figures
        print(
            f"operators(aeo_ids=[id]) x{args.lookups}: p50 {f['aeo_id_p50_ms']:.3f} ms, "
            f"p99 {f['aeo_id_p99_ms']:.3f} ms; bare sqlite3 p50 {f['aeo_id_bare_p50_ms']:.3f} "
            f"ms, p99 {f['aeo_id_bare_p99_ms']:.3f} ms; ratio p50 "
            f"{f['aeo_id_p50_ms'] / f['aeo_id_bare_p50_ms']:.1f}x, p99 "
            f"{f['aeo_id_p99_ms'] / f['aeo_id_bare_p99_ms']:.1f}x"
        )
        print(
            f"operators(tins=[tin]) x{args.lookups // 4}: p50 {f['tin_p50_ms']:.3f} ms, "
            f"p99 {f['tin_p99_ms']:.3f} ms; bare p50 {f['tin_bare_p50_ms']:.3f} ms, "
            f"p99 {f['tin_bare_p99_ms']:.3f} ms"
        )
        print(
            f"operators(aeo_ids=100 ids) x{args.batches}: {f['batch_ids_per_s']:,.0f} ids/s "
            f"(operators_now {f['batch_now_ids_per_s']:,.0f}); bare sqlite3 "
            f"{f['batch_bare_ids_per_s']:,.0f} ids/s; ratio "
            f"{f['batch_bare_ids_per_s'] / f['batch_ids_per_s']:.1f}x slower"
        )
        ok = f["aeo_id_p99_ms"] < 2.0 and f["batch_ids_per_s"] > 20_000
        if args.write:
            w = await write_cost(folder, args.write)
            print(
                f"accept {args.write} inbound AEO statuses in commits of {COMMIT}: "
                f"{w['without_registry_per_s']:,.0f}/s without registry rows, "
                f"{w['with_registry_per_s']:,.0f}/s with; the registry adds "
                f"{w['added_us_per_message']:.0f} us a message"
            )
        print("targets (p99 < 2 ms, > 20,000 ids/s):", "met" if ok else "NOT met")
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="AEO statuses to fill")
    parser.add_argument("--lookups", type=int, default=20_000, help="single lookups timed")
    parser.add_argument("--batches", type=int, default=500, help="batches of 100 ids timed")
    parser.add_argument(
        "--write", type=int, default=0, help="also time N inbound AEO statuses accepted"
    )
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
