"""End-to-end delivery between two real hubs, next to a bare mTLS streaming echo.

    python bench/e2e.py [--messages 10000] [--seconds 10] [--json bench/e2e-latest.json]
                        [--telemetry off|on] [--sample-ratio 1.0]

Starts CN and NZ as two `customs-hub serve` processes (real mTLS, SQLite stores, a fresh
development PKI in a temporary folder) and drives CN's domestic port from this process with
Domestic.SubmitBatch. A message's latency is from the moment CN accepted the submission (the
outbound row's created_at) to the moment CN stored NZ's verified receipt (the receipt row's
received_at): both read from CN's clock, in CN's database, after the run.

For two workloads, WCO declarations (the median corpus declaration, 17 KB of XML, translated
at CN) and AEO status updates (protobuf in), it measures:

- peak: as many messages as the hubs take, submitted as fast as they are answered; messages per
  second = messages / (last receipt stored - first message accepted);
- p50 and p99 latency at 50% and 90% of that peak, offered at a steady rate (open loop) for
  ``--seconds`` each;
- the bare echo (bench/echo.py) with the same envelope sizes, in the same run: the ratio says
  how much of what gRPC and TLS alone can carry the hub carries with everything it does.

Everything shares this machine: both hubs and the load generator.

``--telemetry on`` runs both hubs as an operator would with telemetry: ``[telemetry] exporter =
"otlp"`` (the spans of every message, or of ``--sample-ratio`` of them, exported in batches
over OTLP/gRPC to a fake collector, tests/otlpsink.py, in its own process) and a Prometheus
port each; the spans and metric points the collector received are printed. ``off`` (the
default) is the hub's default: no [telemetry] table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import grpc
from echo import echo_rate  # bench/ is on sys.path when run as `python bench/e2e.py`

from hub.cli.demo import sample_aeo_status
from hub.cli.pki import init_federation
from hub.config import render_config
from hub.pb.customs_hub.v1 import service_pb2 as spb

ROOT = Path(__file__).resolve().parents[1]
DECLARATION = (  # the copy of the CDS sample in tests/corpus (tests/SOURCES.md)
    ROOT
    / "tests/corpus/hmrc-customs-declarations/public/api/conf/3.0/examples"
    / "annotated_XML_samples/TT_IM001b/TT_IM001b.xml"
)


@dataclass
class Figures:
    workload: str
    envelope_bytes: int
    peak_per_second: float
    p50_ms_at_50: float
    p99_ms_at_50: float
    p50_ms_at_90: float
    p99_ms_at_90: float
    echo_per_second: float = 0.0

    @property
    def ratio(self) -> float:
        return self.peak_per_second / self.echo_per_second if self.echo_per_second else 0.0


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hubs:
    """CN and NZ as `customs-hub serve` processes."""

    def __init__(self, root: Path, collector: int = 0, sample_ratio: float = 1.0) -> None:
        """``collector``: the port of an OTLP collector both hubs export to (0: telemetry
        off), keeping ``sample_ratio`` of their traces."""
        self.root = root
        pki = root / "pki"
        init_federation(pki, ["CN", "NZ"])
        self.ports = {p: (free_port(), free_port()) for p in ("CN", "NZ")}
        self.configs = {}
        for party, other in (("CN", "NZ"), ("NZ", "CN")):
            hubdir = root / party
            hubdir.mkdir()
            text = render_config(
                party=party,
                listen=f"127.0.0.1:{self.ports[party][0]}",
                domestic_listen=f"127.0.0.1:{self.ports[party][1]}",
                pki=pki,
                partners={other: f"127.0.0.1:{self.ports[other][0]}"},
                store="sqlite:///hub.db",
            )
            if collector:
                text += (
                    f'\n[telemetry]\nexporter = "otlp"\n'
                    f'otlp_endpoint = "http://127.0.0.1:{collector}"\n'
                    f"prometheus_port = {free_port()}\nsample_ratio = {sample_ratio}\n"
                )
            (hubdir / "hub.toml").write_text(text)
            self.configs[party] = hubdir / "hub.toml"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self) -> None:
        for party in ("NZ", "CN"):
            self.procs[party] = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hub.cli.main",
                    "serve",
                    "--config",
                    str(self.configs[party]),
                ],
                stdout=subprocess.PIPE,
                stderr=open(self.root / f"{party}.log", "wb"),  # noqa: SIM115 - lives with the process
            )
            line = self.procs[party].stdout.readline()  # type: ignore[union-attr]
            if b"partners on" not in line:
                raise RuntimeError(
                    f"{party} did not start: {(self.root / f'{party}.log').read_text()}"
                )

    def stop(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()

    @property
    def domestic(self) -> str:
        return f"127.0.0.1:{self.ports['CN'][1]}"

    def cn_db(self) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.root / 'CN' / 'hub.db'}?mode=ro", uri=True)


def declaration_request(xml: bytes) -> spb.SubmitRequest:
    return spb.SubmitRequest(raw=spb.RawDocument(format="wco-xml", content=xml), recipients=["NZ"])


def aeo_request(n: int) -> spb.SubmitRequest:
    return spb.SubmitRequest(aeo_status=sample_aeo_status("CN", f"CNAEO{n:08d}"), recipients=["NZ"])


SUBMIT_BATCH = "/customs_hub.v1.Domestic/SubmitBatch"
# Documents per SubmitBatch call: a domestic system sending as documents come, a few at a time.
CALL_DOCUMENTS = {"declaration": 4, "aeo-status": 25}
# Calls in flight while measuring the peak.
CLOSED_LOOP_CALLS = 8


class Load:
    """Domestic submissions to CN. Calls are built and serialised before they are timed, so
    the load generator takes as little as it can of the CPU the hubs share with it."""

    def __init__(self, hubs: Hubs, workload: str) -> None:
        self.hubs = hubs
        self.workload = workload
        self.xml = DECLARATION.read_bytes()
        self.counter = 0

    def calls(self, total: int, batch: int) -> list[bytes]:
        out = []
        for start in range(0, total, batch):
            requests = []
            for _ in range(min(batch, total - start)):
                self.counter += 1
                requests.append(
                    declaration_request(self.xml)
                    if self.workload == "declaration"
                    else aeo_request(self.counter)
                )
            out.append(spb.SubmitBatchRequest(requests=requests).SerializeToString())
        return out

    async def closed_loop(self, channel: grpc.aio.Channel, total: int, batch: int) -> list[str]:
        """Submit ``total`` as fast as answered, ``CLOSED_LOOP_CALLS`` calls in flight."""
        ids: list[str] = []
        calls = self.calls(total, batch)
        submit = submitter(channel)

        async def worker() -> None:
            while calls:
                ids.extend(await submit(calls.pop()))

        await asyncio.gather(*(worker() for _ in range(CLOSED_LOOP_CALLS)))
        return ids

    async def open_loop(
        self, channel: grpc.aio.Channel, rate: float, seconds: float, batch: int
    ) -> list[str]:
        """Offer ``rate`` messages per second for ``seconds``, in calls of ``batch``."""
        ids: list[str] = []
        calls = self.calls(int(rate * seconds) + batch, batch)
        submit = submitter(channel)
        running = []
        interval = batch / rate
        start = time.perf_counter()
        n = 0
        while (due := start + n * interval) < start + seconds and n < len(calls):
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            running.append(asyncio.create_task(submit(calls[n])))
            n += 1
        refused: dict[str, int] = {}
        for call in running:
            try:
                ids.extend(await call)
            except grpc.aio.AioRpcError as exc:  # counted and shown: an overload is a finding
                refused[exc.code().name] = refused.get(exc.code().name, 0) + 1
        if refused:
            print(f"  {rate:.0f}/s offered: calls refused {refused} of {n}", file=sys.stderr)
        return ids


def submitter(channel: grpc.aio.Channel) -> Callable[[bytes], Awaitable[list[str]]]:
    call = channel.unary_unary(
        SUBMIT_BATCH,
        request_serializer=None,  # the request is serialised already
        response_deserializer=spb.SubmitBatchResponse.FromString,
    )

    async def submit(request: bytes) -> list[str]:
        response = await call(request, timeout=60)
        ids = []
        for result in response.results:
            if result.WhichOneof("result") != "queued":
                raise RuntimeError(f"submission refused: {result.error}")
            ids += [q.message_id for q in result.queued.queued]
        return ids

    return submit


def parse_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def mark(hubs: Hubs) -> int:
    """The newest outbound row at CN: what a phase submits comes after it."""
    with hubs.cn_db() as db:
        (newest,) = db.execute("SELECT coalesce(max(id), 0) FROM outbound_message").fetchone()
    return int(newest)


async def settled(
    hubs: Hubs, after: int, ids: list[str], timeout: float = 300
) -> list[tuple[float, float]]:
    """Wait until CN stored receipts for ``ids`` (all submitted after ``mark`` returned
    ``after``); (accepted, receipt stored) times per id."""
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    join = "FROM outbound_message m JOIN receipt r ON r.message_id = m.message_id WHERE m.id > ?"
    while True:
        # counting is cheap; the rows are read once, when they can all be there
        with hubs.cn_db() as db:
            (count,) = db.execute(f"SELECT count(*) {join}", (after,)).fetchone()
            rows = []
            if count >= len(wanted):
                rows = db.execute(
                    f"SELECT m.message_id, m.created_at, r.received_at {join}", (after,)
                ).fetchall()
        done = {mid: (parse_time(c), parse_time(r)) for mid, c, r in rows if mid in wanted}
        if len(done) == len(wanted):
            return list(done.values())
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {count} of {len(wanted)} receipts after {timeout} s")
        await asyncio.sleep(0.2)


def envelope_size(hubs: Hubs, message_id: str) -> int:
    with hubs.cn_db() as db:
        (size,) = db.execute(
            "SELECT length(envelope) FROM outbound_message WHERE message_id = ?", (message_id,)
        ).fetchone()
    return int(size)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(hubs: Hubs, workload: str, messages: int, seconds: float) -> Figures:
    load = Load(hubs, workload)
    # the same calls at the peak as at 50% and 90% of it, so that those are shares of what
    # the hubs carry in calls of that size
    batch = CALL_DOCUMENTS[workload]
    async with grpc.aio.insecure_channel(
        hubs.domestic, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as channel:
        after = mark(hubs)
        await settled(hubs, after, await load.closed_loop(channel, batch * 4, batch))  # warm-up
        after = mark(hubs)
        ids = await load.closed_loop(channel, messages, batch)
        times = await settled(hubs, after, ids)
        peak = len(times) / (max(r for _, r in times) - min(c for c, _ in times))
        figures = Figures(workload, envelope_size(hubs, ids[0]), peak, 0, 0, 0, 0)
        for share in (0.5, 0.9):
            after = mark(hubs)
            offered = await load.open_loop(channel, peak * share, seconds, batch)
            latencies = [(r - c) * 1000 for c, r in await settled(hubs, after, offered)]
            p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
            if share == 0.5:
                figures.p50_ms_at_50, figures.p99_ms_at_50 = p50, p99
            else:
                figures.p50_ms_at_90, figures.p99_ms_at_90 = p50, p99
    return figures


@dataclass
class Disk:
    """fsync latency of the disk the stores are on, measured in the same run: every commit
    waits for one, so a disk that stalls shows in the hubs' p99 however fast they are."""

    p50_ms: float
    p99_ms: float
    max_ms: float
    count: int


def disk_fsync(folder: Path, seconds: float = 3.0) -> Disk:
    path = folder / "fsync-probe"
    block = os.urandom(64 * 1024)  # about one commit's log pages under load
    times: list[float] = []
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        end = time.monotonic() + seconds
        offset = 0
        while time.monotonic() < end:
            os.pwrite(fd, block, offset)
            offset = (offset + len(block)) % (4 << 20)
            start = time.perf_counter()
            os.fsync(fd)
            times.append((time.perf_counter() - start) * 1000)
            time.sleep(0.002)
    finally:
        os.close(fd)
        path.unlink()
    return Disk(percentile(times, 0.5), percentile(times, 0.99), max(times), len(times))


class Collector:
    """The fake OTLP collector (tests/otlpsink.py) as a process of its own."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "otlpsink.py"), "--port", str(self.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        if self.proc.stdout is None or "listening" not in self.proc.stdout.readline():
            raise RuntimeError("the fake OTLP collector did not start")

    def stop(self) -> dict[str, int]:
        """What it received: spans and metric points."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=20)
        return dict(json.loads(out.strip().splitlines()[-1]))


async def run(
    messages: int, seconds: float, telemetry: bool, sample_ratio: float
) -> tuple[list[Figures], Disk]:
    with tempfile.TemporaryDirectory() as tmp:
        disk = disk_fsync(Path(tmp))
        collector = Collector() if telemetry else None
        hubs = Hubs(Path(tmp), collector.port if collector else 0, sample_ratio)
        hubs.start()
        try:
            results = [
                await measure(hubs, "declaration", messages // 3, seconds),
                await measure(hubs, "aeo-status", messages, seconds),
            ]
        except BaseException:
            hubs.stop()
            for party in ("CN", "NZ"):  # what the hubs said is the first thing to look at
                log = (hubs.root / f"{party}.log").read_text(errors="replace")
                print(f"--- {party}'s log, last lines:\n{log[-4000:]}", file=sys.stderr)
            if collector is not None:
                collector.stop()
            raise
        hubs.stop()  # stopping, the hubs export what spans they still hold
        if collector is not None:
            received = collector.stop()
            print(
                f"telemetry on: the collector received {received['spans']:,} spans and "
                f"{received['points']:,} metric points"
            )
    echoes = await echo_rate([r.envelope_bytes for r in results], 20_000)
    for figures, echo in zip(results, echoes, strict=True):
        figures.echo_per_second = echo.per_second
    return results, disk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="AEO messages at peak")
    parser.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="length of each steady-rate phase (a p99 over a few seconds is one stall)",
    )
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "e2e-latest.json")
    parser.add_argument(
        "--telemetry",
        choices=("off", "on"),
        default="off",
        help="on: both hubs export every span and their metrics over OTLP to a fake collector",
    )
    parser.add_argument(
        "--sample-ratio",
        type=float,
        default=1.0,
        help="with --telemetry on: the share of traces the hubs keep ([telemetry] sample_ratio)",
    )
    args = parser.parse_args()
    results, disk = asyncio.run(
        run(args.messages, args.seconds, args.telemetry == "on", args.sample_ratio)
    )
    machine = f"{os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}"
    print(f"end to end, CN -> NZ, SQLite, both hubs and the load generator on {machine}")
    print(
        f"disk: fsync of 64 KiB p50 {disk.p50_ms:.2f} ms, p99 {disk.p99_ms:.2f} ms, "
        f"max {disk.max_ms:.1f} ms ({disk.count} in 3 s, before the hubs start)"
    )
    print(
        f"{'workload':<12} {'envelope':>8} {'peak/s':>8} {'echo/s':>8} {'ratio':>6}  "
        f"{'p50@50%':>8} {'p99@50%':>8} {'p50@90%':>8} {'p99@90%':>8}"
    )
    for r in results:
        print(
            f"{r.workload:<12} {r.envelope_bytes:>8,} {r.peak_per_second:>8,.0f} "
            f"{r.echo_per_second:>8,.0f} {r.ratio:>6.2f}  {r.p50_ms_at_50:>6.1f}ms "
            f"{r.p99_ms_at_50:>6.1f}ms {r.p50_ms_at_90:>6.1f}ms {r.p99_ms_at_90:>6.1f}ms"
        )
    args.json.write_text(
        json.dumps(
            {
                "machine": machine,
                "disk_fsync_64k": asdict(disk),
                "date": datetime.now().astimezone().isoformat(timespec="seconds"),
                "telemetry": args.telemetry,
                "sample_ratio": args.sample_ratio if args.telemetry == "on" else None,
                "results": [asdict(r) | {"ratio": r.ratio} for r in results],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
