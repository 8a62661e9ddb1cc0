"""How long a partner's deliveries wait while the receiving hub translates a huge document.

    python bench/stall.py [--seconds 10] [--rate 50]

Starts CN and NZ as two `customs-hub serve` processes (as bench/e2e.py does) and offers CN a
steady stream of AEO statuses for NZ (``--rate`` per second, one per call), twice: once on a
quiet NZ, once while NZ's domestic port is kept busy translating an 8 MiB EDIFACT interchange
(about 300,000 segments: seconds of CPU for the EDIFACT reader, then refused at its segment
limit), one after the other. A delivery's latency is from CN accepting the submission to CN
storing NZ's verified receipt, read from CN's database after the run. It prints p50, p99 and
the largest latency of each phase: with translation on NZ's event loop the attacked phase's
figures were seconds (issue 14); with it on the hub's worker threads they stay near the quiet
ones.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import grpc
from e2e import Hubs, Load, mark, percentile, settled  # bench/ is on sys.path

from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc

HEAD = (
    b"UNA:+.? '\nUNB+UNOC:3+NZ+NZ+261125:0320+A10E28F5B28745'\nUNH+1+CUSRES:D:96B:UN'\n"
    b"BGM+962+NZ-INSP-2026-11-00191+9'\nDTM+137:20261125031400:204'\n"
)
SEGMENT = b"FTX+AAH++PHYSICAL:CTY:ZZZ'\n"
TAIL = b"GIS+4'\nUNT+5+1'\nUNZ+1+A10E28F5B28745'\n"
SIZE = 8 * 1024 * 1024 - 4096  # under the domestic port's 8 MiB message limit


def huge_interchange() -> bytes:
    return HEAD + SEGMENT * ((SIZE - len(HEAD) - len(TAIL)) // len(SEGMENT)) + TAIL


async def keep_translating(address: str, stop: asyncio.Event) -> int:
    """Submit the huge interchange to NZ again and again until ``stop``; how many were sent."""
    request = spb.SubmitRequest(raw=spb.RawDocument(format="edifact", content=huge_interchange()))
    sent = 0
    async with grpc.aio.insecure_channel(
        address, options=[("grpc.max_send_message_length", 9 * 1024 * 1024)]
    ) as channel:
        stub = sgrpc.DomesticStub(channel)
        while not stop.is_set():
            sent += 1
            try:
                await stub.Submit(request, timeout=120)
            except grpc.aio.AioRpcError as exc:  # refused: what it cost NZ is the point
                if exc.code() != grpc.StatusCode.INVALID_ARGUMENT:
                    print(f"  the huge document got {exc.code().name}", file=sys.stderr)
    return sent


async def phase(hubs: Hubs, rate: float, seconds: float, attacked: bool) -> list[float]:
    load = Load(hubs, "aeo-status")
    stop = asyncio.Event()
    attack = None
    if attacked:
        nz_domestic = f"127.0.0.1:{hubs.ports['NZ'][1]}"
        attack = asyncio.create_task(keep_translating(nz_domestic, stop))
        await asyncio.sleep(1.0)  # NZ is busy translating before the first delivery
    after = mark(hubs)
    async with grpc.aio.insecure_channel(hubs.domestic) as channel:
        ids = await load.open_loop(channel, rate, seconds, batch=1)
    times = await settled(hubs, after, ids)
    stop.set()
    if attack is not None:
        print(f"  huge documents submitted to NZ meanwhile: {await attack}")
    return [(stored - accepted) * 1000 for accepted, stored in times]


def report(name: str, latencies: list[float]) -> None:
    print(
        f"{name:>9}: {len(latencies)} deliveries, latency p50 {percentile(latencies, 0.5):.0f} ms, "
        f"p99 {percentile(latencies, 0.99):.0f} ms, max {max(latencies):.0f} ms"
    )


async def run(seconds: float, rate: float) -> None:
    with tempfile.TemporaryDirectory(prefix="stall-") as tmp:
        hubs = Hubs(Path(tmp))
        hubs.start()
        try:
            await asyncio.sleep(1.0)
            quiet = await phase(hubs, rate, seconds, attacked=False)
            report("quiet", quiet)
            busy = await phase(hubs, rate, seconds, attacked=True)
            report("attacked", busy)
        finally:
            hubs.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=50.0, help="deliveries per second")
    args = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(run(args.seconds, args.rate))
    print(f"({time.perf_counter() - started:.0f} s in all, CN and NZ on this machine)")


if __name__ == "__main__":
    main()
