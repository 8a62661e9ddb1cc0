"""Lost receipts and a hanging or slow partner, with a fault proxy between two real hubs.

CN's configured endpoint for NZ is a FaultProxy in front of NZ's partner port (the proxy moves
TLS bytes untouched, and the development TLS certificates name 127.0.0.1, so CN still checks
NZ's real certificate). Each test asserts the state afterwards on both sides: NZ holds every
message exactly once, CN holds for each the receipt NZ stored, byte for byte, and CN's outbox
is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from hub.cli.demo import sample_aeo_status
from hub.core.envelope import verify_receipt
from hub.core.errors import HubError
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.runtime import RunningHub
from tests.conftest import Federation
from tests.faultproxy import FaultProxy
from tests.test_delivery import drained, fast_retries, submit_batch
from tests.test_exchange import eventually, nz_signing_key


def aeo_statuses(first: int, count: int) -> list[spb.SubmitRequest]:
    """CN's AEO statuses for NZ, each for its own AEO (so none supersedes another)."""
    return [
        spb.SubmitRequest(aeo_status=sample_aeo_status("CN", f"CNAEO{i:06d}"), recipients=["NZ"])
        for i in range(first, first + count)
    ]


@dataclasses.dataclass
class Link:
    """CN and NZ running, CN reaching NZ only through ``proxy``."""

    cn: RunningHub
    nz: RunningHub
    proxy: FaultProxy


@contextlib.asynccontextmanager
async def through_proxy(federation: Federation, **cn_limits: float) -> AsyncIterator[Link]:
    """Start NZ, a proxy to NZ's partner port, and CN with the proxy as NZ's endpoint."""
    fast_retries(federation, "CN", **cn_limits)
    nz = await federation.start("NZ")
    proxy = FaultProxy("127.0.0.1", nz.partner_port)
    await proxy.start()
    config = federation.configs["CN"]
    via_proxy = dataclasses.replace(config.partners["NZ"], endpoint=proxy.address)
    federation.configs["CN"] = dataclasses.replace(
        config, partners={**config.partners, "NZ": via_proxy}
    )
    try:
        cn = await federation.start("CN")
        yield Link(cn, nz, proxy)
    finally:
        await federation.stop_all()  # before the proxy: no hub is left talking to it
        await proxy.stop()


class NzAnswers:
    """Wraps NZ's receive_batch: counts, per message id, how often NZ answered an envelope (a
    resend counts again), and while ``released`` is clear holds NZ's answers (the receipts)
    back after NZ has committed them, so the test decides when they go out."""

    def __init__(self, nz: RunningHub) -> None:
        self.count: Counter[str] = Counter()
        self.released = asyncio.Event()
        self.released.set()
        receive_batch = nz.hub.ingress.receive_batch

        async def answering(
            envelopes: Sequence[bytes], peer: str, **order: asyncio.Event | None
        ) -> list[pb.SignedReceipt | HubError]:
            results = await receive_batch(envelopes, peer, **order)
            for result in results:
                if isinstance(result, pb.SignedReceipt):
                    self.count[pb.Receipt.FromString(result.receipt).message_id] += 1
            await self.released.wait()
            return results

        nz.hub.ingress.receive_batch = answering  # type: ignore[method-assign]


async def assert_delivered_once(link: Link, sent: list[str], pki: Path) -> None:
    """NZ holds each message once, in CN's order; CN holds for each the exact receipt NZ
    stored, verifiable with NZ's key; nothing is left in CN's outbox."""
    await eventually(lambda: drained(link.cn), timeout=30)
    inbound = await link.nz.hub.store.views.inbound()
    ids = [m.message_id for m in inbound]
    assert Counter(ids) == Counter(sent) and max(Counter(ids).values()) == 1
    assert ids == sent  # the queue drained in creation order, resends included
    stored = {m.message_id: m.signed_receipt for m in inbound}
    keys = nz_signing_key(pki)
    rows = await link.cn.hub.store.views.outbound()
    assert sorted(m.message_id for m, _ in rows) == sorted(sent)
    for message, record in rows:
        assert record is not None, f"no receipt for {message.message_id}"
        assert message.status == "delivered" and record.outcome == "accepted"
        assert record.signed_receipt == stored[message.message_id]
        receipt = verify_receipt(pb.SignedReceipt.FromString(record.signed_receipt), "NZ", keys)
        assert receipt.message_id == message.message_id
        assert receipt.envelope_digest == message.envelope_digest
    assert await link.cn.hub.store.views.outbox() == []


async def test_receipts_lost_after_nz_committed_are_answered_again_with_the_originals(
    federation: Federation, pki: Path
) -> None:
    async with through_proxy(federation) as link:
        answers = NzAnswers(link.nz)
        first = await submit_batch(link.cn, aeo_statuses(0, 1))
        await eventually(lambda: drained(link.cn))  # the connection and stream are up
        answers.released.clear()
        sent = await submit_batch(link.cn, aeo_statuses(1, 40))

        async def nz_committed_all() -> bool:
            return len(await link.nz.hub.store.views.inbound()) == 1 + len(sent)

        await eventually(nz_committed_all)
        # NZ has committed every message and signed its receipts; CN has none of them yet
        assert [e.attempts for e in await link.cn.hub.store.views.outbox()] == [0] * len(sent)
        # the next byte NZ sends (the receipts, or anything before them) cuts the connection
        link.proxy.cut_after("downstream", 0)
        answers.released.set()

        async def cut() -> bool:
            return link.proxy.counters.connections_cut >= 1

        await eventually(cut)
        link.proxy.heal()
        await assert_delivered_once(link, first + sent, pki)
        # every receipt was lost once: CN sent each message again and NZ answered it again,
        # with the receipt it had stored (checked byte for byte above)
        assert all(answers.count[m] >= 2 for m in sent)
        assert link.proxy.counters.connections_accepted >= 2  # CN had to reconnect


@pytest.mark.slow
async def test_a_hanging_partner_times_out_frames_and_gets_everything_once_after_healing(
    federation: Federation, pki: Path
) -> None:
    async with through_proxy(federation, partner_timeout_seconds=0.5) as link:
        first = await submit_batch(link.cn, aeo_statuses(0, 1))
        await eventually(lambda: drained(link.cn))  # the connection and stream are up
        link.proxy.blackhole()
        sent = await submit_batch(link.cn, aeo_statuses(1, 40))

        async def timed_out_twice() -> bool:
            entries = await link.cn.hub.store.views.outbox()
            return len(entries) == len(sent) and all(e.attempts >= 2 for e in entries)

        # CN gave up on its frames (no receipts within the timeout) twice, and keeps them
        await eventually(timed_out_twice)
        entries = await link.cn.hub.store.views.outbox()
        assert all("no receipts within" in (e.last_error or "") for e in entries)
        assert [m.message_id for m in await link.nz.hub.store.views.inbound()] == first
        link.proxy.heal()
        await assert_delivered_once(link, first + sent, pki)


@pytest.mark.slow
async def test_a_slow_link_delivers_everything_once_in_order(
    federation: Federation, pki: Path
) -> None:
    async with through_proxy(federation) as link:
        link.proxy.delay(0.05)
        sent: list[str] = []
        for first in (0, 100, 200):
            sent += await submit_batch(link.cn, aeo_statuses(first, 100))
        await assert_delivered_once(link, sent, pki)
        assert link.proxy.counters.bytes_upstream > 0 and link.proxy.counters.bytes_downstream > 0
