"""A receiver's memory while a partner writes frames and never reads the answers.

    python bench/unread.py [--seconds 20] [--streams 4] [--compare]

Starts CN and NZ as `customs-hub serve` processes (as bench/e2e.py does). This process then
acts as CN with CN's certificates: it opens ``--streams`` Exchange streams to NZ and writes
frames of 15 MiB (64 signed declarations of 240 KiB each; twelve frames sent in turn, so
after the first round NZ answers duplicates) on all of them as fast as NZ takes them, and
never reads an answer. NZ's heap (RssAnon, from /proc, every 100 ms) is printed before, at
its peak and at the end, with the bound the limits allow for (``bound``); the exit status
is 1 when the peak is over it. With ``--compare`` the same load comes again, on fresh hubs,
from a sender that reads its answers: the attack should cost no more than that.

An adversarial audit measured 584 MB before and 1,740 MB under four such streams (issue 14).
Since then a partner's unanswered frames are bounded by ``limits.stream_buffer_bytes`` per
stream and ``limits.partner_buffer_bytes`` for all its streams (hub/core/admission.py), and gRPC
reads at most 4 MiB ahead on a stream (no BDP window growth, hub/rpc/partner.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import grpc
from e2e import Hubs  # bench/ is on sys.path

from hub.cli.demo import sample_declaration
from hub.config import Limits
from hub.core.envelope import build_envelope
from hub.core.signing import Signer
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.rpc.channels import PartnerChannels, PartnerEndpoint

MIB = 1024 * 1024
ENVELOPES = 64
ENVELOPE_BYTES = 240 * 1024  # 64 of them fit in a frame of max_batch_bytes (16 MiB)
LIMITS = Limits()
CHANGED: dict[str, int] = {}  # limits given on the command line


def bound(streams: int) -> int:
    """The growth the limits let NZ have for one partner's streams. Frames being processed
    are at most the partner's budget of unanswered bytes, plus one frame let through alone;
    each costs about five times its size while it is processed (the frame, its envelopes,
    their bodies and documents, the rows and their SQL parameters; measured: a 15 MiB frame
    peaks at 46 MiB of Python objects, protobuf's arenas besides). Each stream also holds the
    frame it read ahead and what gRPC reads ahead for it (4 MiB, hub/rpc/partner.py); the store,
    gRPC and the allocator take some 64 MiB more."""
    budget = getattr(LIMITS, "partner_buffer_bytes", 0)  # (a commit before the budgets: 0)
    frame = LIMITS.max_batch_bytes
    working_set = 5 * (budget + frame) + streams * (frame + 4 * MIB) + 64 * MIB
    # the allocator's fragmentation creeps up with the volume processed, whoever sends it
    # (the --read phase shows the same): 128 MiB for a minute at full speed
    return working_set + 128 * MIB


def rss(pid: int, field: str = "RssAnon") -> int:
    """Resident memory of ``pid`` (anonymous: the heap, not pages of files it maps)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field}")


def frames(signer: Signer, count: int) -> list[bytes]:
    """``count`` frames of new, signed declarations, each about ENVELOPE_BYTES."""
    out = []
    for _ in range(count):
        envelopes = []
        for _ in range(ENVELOPES):
            document = sample_declaration()
            document.goods_shipment.government_agency_goods_item.add().commodity.description = (
                os.urandom(ENVELOPE_BYTES // 2).hex()
            )
            data, _ = build_envelope(
                signer,
                sender="CN",
                recipient="NZ",
                document=document,
                created_at=datetime.now(UTC),
                ttl=timedelta(days=1),
            )
            envelopes.append(data)
        out.append(pb.EnvelopeBatch(envelopes=envelopes).SerializeToString())
    return out


async def attack(
    hubs: Hubs, streams: int, seconds: float, read: bool = False
) -> tuple[int, int, int]:
    pki = hubs.root / "pki"
    nz_pid = hubs.procs["NZ"].pid
    client = PartnerChannels(
        (pki / "CN" / "tls.pem").read_bytes(),
        (pki / "CN" / "tls.key").read_bytes(),
        {
            "NZ": PartnerEndpoint(
                "NZ", f"127.0.0.1:{hubs.ports['NZ'][0]}", (pki / "NZ" / "ca.pem").read_bytes()
            )
        },
    )
    signer = Signer.from_pem((pki / "CN" / "signing.key").read_bytes())
    prepared = frames(signer, 12)  # sent in turn; NZ takes a repeat as a duplicate
    before = rss(nz_pid)
    peak = before
    written = 0
    stop = time.monotonic() + seconds

    async def writer(k: int) -> None:
        nonlocal written
        call = client.channel("NZ").stream_stream(
            "/customs_hub.v1.PartnerExchange/Exchange",
            request_serializer=None,
            response_deserializer=pb.ReceiptBatch.FromString,
        )(timeout=seconds + 30)
        n = k

        async def reader() -> None:
            async for _ in call:
                pass

        if read:  # the well-behaved sender, for comparison
            asyncio.get_running_loop().create_task(reader())
        try:
            while time.monotonic() < stop:
                # a write that waits is held back by flow control (what the limits are for);
                # it is waited for, never cancelled: cancelling a write cancels the call
                write = asyncio.ensure_future(call.write(prepared[n % len(prepared)]))
                while not write.done() and time.monotonic() < stop:
                    await asyncio.wait({write}, timeout=0.5)
                if not write.done():
                    break
                write.result()
                written += 1
                n += streams
        except (asyncio.InvalidStateError, grpc.aio.AioRpcError):
            code = await call.code()
            if code != grpc.StatusCode.CANCELLED:  # (CANCELLED: this process stopped it)
                print(f"  stream {k} ended by NZ: {code.name} {await call.details()}")
        finally:
            call.cancel()

    async def sampler() -> None:
        nonlocal peak
        while time.monotonic() < stop:
            peak = max(peak, rss(nz_pid))
            await asyncio.sleep(0.1)

    await asyncio.gather(sampler(), *(writer(k) for k in range(streams)))
    await client.close()
    size = len(prepared[0]) / MIB
    what = "its answers read" if read else "not one answer read"
    print(f"  frames of {size:.1f} MiB written by CN ({what}): {written}")
    return before, peak, rss(nz_pid)


async def phase(seconds: float, streams: int, read: bool) -> tuple[int, int, int]:
    with tempfile.TemporaryDirectory(prefix="unread-") as tmp:
        hubs = Hubs(Path(tmp))
        if CHANGED:  # the limits asked for, in NZ's config
            nz_config = hubs.configs["NZ"]
            lines = "".join(f"{k} = {v}\n" for k, v in CHANGED.items())
            text = nz_config.read_text()
            nz_config.write_text(text.replace("[limits]\n", "[limits]\n" + lines, 1))
        hubs.start()
        try:
            return await attack(hubs, streams, seconds, read)
        finally:
            hubs.stop()


async def run(seconds: float, streams: int, compare: bool) -> bool:
    limit = bound(streams)
    before, peak, after = await phase(seconds, streams, read=False)
    print(
        f"NZ's heap (RssAnon): {before / MIB:.0f} MiB before, peak {peak / MIB:.0f} MiB under "
        f"{streams} streams whose answers CN never reads, for {seconds:g} s "
        f"(+{(peak - before) / MIB:.0f} MiB; bound +{limit / MIB:.0f} MiB), "
        f"{after / MIB:.0f} MiB at the end"
    )
    if compare:
        before, peak, after = await phase(seconds, streams, read=True)
        print(
            f"the same sender reading its answers: peak +{(peak - before) / MIB:.0f} MiB, "
            f"{after / MIB:.0f} MiB at the end"
        )
    return peak - before <= limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument(
        "--compare",
        action="store_true",
        help="then the same load from a sender that reads its answers, on fresh hubs",
    )
    parser.add_argument("--stream-buffer-mib", type=float, default=None)
    parser.add_argument("--partner-buffer-mib", type=float, default=None)
    args = parser.parse_args()
    global LIMITS
    if args.stream_buffer_mib:
        CHANGED["stream_buffer_bytes"] = int(args.stream_buffer_mib * MIB)
    if args.partner_buffer_mib:
        CHANGED["partner_buffer_bytes"] = int(args.partner_buffer_mib * MIB)
    LIMITS = dataclasses.replace(LIMITS, **CHANGED)
    within = asyncio.run(run(args.seconds, args.streams, args.compare))
    print("within the bound" if within else "OVER THE BOUND")
    raise SystemExit(0 if within else 1)


if __name__ == "__main__":
    main()
