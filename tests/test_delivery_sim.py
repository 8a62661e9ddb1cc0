"""Delivery against a partner that misbehaves, over the in-memory partner simulator
(tests/partnersim.py: a real NZ hub with its own store and keys, no socket). Each case checks
what a sender must keep true: nothing accepted is lost, nothing settled twice, a receipt that
does not verify settles nothing, and once the partner behaves, everything arrives in order.

The same delivery code runs over real mTLS in tests/test_delivery.py and tests/test_crash.py."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from hub.app.delivery import OutboxWorker
from hub.app.hub import Hub
from hub.app.submission import Submission
from hub.cli.demo import sample_aeo_status
from hub.store.db import Store
from tests.conftest import Federation
from tests.partnersim import Misbehaviour, PartnerSim
from tests.test_exchange import eventually


@dataclass
class Pair:
    cn: Hub
    nz: Hub
    sg: Hub
    sim: PartnerSim
    worker: OutboxWorker

    async def submit(self, n: int, prefix: str = "CNAEO", to: str = "NZ") -> list[str]:
        results = await self.cn.submission.submit_many(
            [Submission(sample_aeo_status("CN", f"{prefix}{i:04d}"), [to]) for i in range(n)]
        )
        return [q.message_id for r in results for q in r]  # type: ignore[union-attr]

    async def delivered(self, to: str = "NZ") -> list[str]:
        """CN's messages a partner holds, in the order it accepted them."""
        partner = self.sg if to == "SG" else self.nz
        return [m.message_id for m in await partner.store.views.inbound() if m.sender == "CN"]

    async def statuses(self) -> dict[str, str]:
        return {m.message_id: m.status for m, _ in await self.cn.store.views.outbound()}


@pytest.fixture
async def pair(federation: Federation) -> AsyncIterator[Pair]:
    hubs: dict[str, Hub] = {}
    for party in ("CN", "NZ", "SG"):
        config = federation.configs[party]
        limits = dataclasses.replace(
            config.limits,
            retry_initial_seconds=0.05,
            retry_max_seconds=0.2,
            retry_jitter=0.0,
            poll_seconds=0.05,
            partner_timeout_seconds=1.0,
            delivery_batch=4,
        )
        store = Store(config.store_url)
        await store.prepare(create=True)
        hubs[party] = Hub(dataclasses.replace(config, limits=limits), store)
    sim = PartnerSim([hubs["NZ"], hubs["SG"]], "CN")
    worker = OutboxWorker(hubs["CN"], sim)
    worker.start()
    try:
        yield Pair(hubs["CN"], hubs["NZ"], hubs["SG"], sim, worker)
    finally:
        await worker.stop(grace=0.5)
        for hub in hubs.values():
            await hub.close()
            await hub.store.close()


async def test_a_well_behaved_partner_gets_everything_in_order(pair: Pair) -> None:
    sent = await pair.submit(20)
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent
    assert set((await pair.statuses()).values()) == {"delivered"}


async def test_receipts_that_never_come_leave_everything_queued_then_it_is_delivered_once(
    pair: Pair,
) -> None:
    pair.sim.behaviour = Misbehaviour(drop_receipts=True)
    sent = await pair.submit(8)
    await eventually(lambda: pair.sim.frames_received >= 2)
    await eventually(lambda: _failures(pair))  # past the partner timeout: the stream is given up
    assert set((await pair.statuses()).values()) == {"queued"}
    # NZ accepted them already (it only never answered): the resends are duplicates
    pair.sim.behaviour = Misbehaviour()
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent  # once each, in order


async def test_late_receipts_are_taken_as_they_come(pair: Pair) -> None:
    pair.sim.behaviour = Misbehaviour(delay=0.3)
    sent = await pair.submit(12)
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent


async def test_a_frame_answered_twice_settles_nothing_twice(pair: Pair) -> None:
    """The extra answer is taken for the next frame's: its receipts name other bytes, so
    that frame's messages are not settled by them but tried again."""
    pair.sim.behaviour = Misbehaviour(duplicate=True)
    sent = await pair.submit(12)
    await eventually(lambda: _failures(pair))
    pair.sim.behaviour = Misbehaviour()
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent
    receipts = [r for _, r in await pair.cn.store.views.outbound()]
    assert len(receipts) == len(sent) and all(r is not None for r in receipts)


async def test_garbage_receipts_settle_nothing(pair: Pair) -> None:
    pair.sim.behaviour = Misbehaviour(garbage=True)
    sent = await pair.submit(6)
    await eventually(lambda: _failures(pair))
    assert set((await pair.statuses()).values()) == {"queued"}
    pair.sim.behaviour = Misbehaviour()
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent


async def test_a_partner_restarting_mid_stream_loses_nothing(pair: Pair) -> None:
    pair.sim.behaviour = Misbehaviour(end_after=2)
    sent = await pair.submit(24)
    await eventually(lambda: len(pair.sim.streams) >= 3)
    pair.sim.behaviour = Misbehaviour()
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent


async def test_receipts_signed_by_another_administration_settle_nothing(pair: Pair) -> None:
    """SG's key signs NZ's receipts: CN trusts none of them for NZ."""
    pair.sim.behaviour = Misbehaviour(wrong_signer=pair.sg)
    sent = await pair.submit(6)
    await eventually(lambda: _failures(pair))
    assert set((await pair.statuses()).values()) == {"queued"}
    assert [r for _, r in await pair.cn.store.views.outbound() if r is not None] == []
    pair.sim.behaviour = Misbehaviour()
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent


async def test_an_unreachable_partner_backs_off_and_drains_when_back(pair: Pair) -> None:
    pair.sim.reachable = False
    sent = await pair.submit(5)
    await eventually(lambda: _failures(pair))
    assert pair.sim.frames_received == 0
    pair.sim.reachable = True
    await eventually(lambda: _all_delivered(pair, sent))
    assert await pair.delivered() == sent


async def test_a_down_partner_does_not_hold_up_the_others_and_drains_in_order(
    pair: Pair,
) -> None:
    pair.sim.down.add("SG")
    to_sg = await pair.submit(30, "SGAEO", to="SG")
    to_nz = await pair.submit(30)

    async def nz_has_all() -> bool:
        return await pair.delivered() == to_nz

    await eventually(nz_has_all)

    async def sg_retried() -> bool:
        entries = [e for e in await pair.cn.store.views.outbox() if e.partner == "SG"]
        return len(entries) == len(to_sg) and entries[0].attempts >= 1

    await eventually(sg_retried)
    more_to_sg = await pair.submit(20, "SGMORE", to="SG")
    rows = await pair.cn.store.views.outbox_rows(datetime.now(UTC))
    assert {r.state for r in rows if r.partner == "SG"} <= {"queued", "retrying"}
    assert await pair.delivered("SG") == []
    pair.sim.down.clear()
    await eventually(lambda: _all_delivered(pair, to_sg + more_to_sg))
    assert await pair.delivered("SG") == to_sg + more_to_sg  # in creation order


async def test_what_another_process_queued_is_sent_by_a_running_hub(pair: Pair) -> None:
    """Issue 16: entries written by another process on the same store (an operator's `outbox
    retry` from the command line) reach the partner without any traffic to wake the sender."""
    first = await pair.submit(2)
    await eventually(lambda: _all_delivered(pair, first))
    other = Hub(pair.cn.config, Store(pair.cn.config.store_url))  # as the CLI opens it
    try:
        results = await other.submission.submit_many(
            [Submission(sample_aeo_status("CN", f"OTHER{i}"), ["NZ"]) for i in range(3)]
        )
    finally:
        await other.close()
        await other.store.close()
    queued = [q.message_id for r in results for q in r]  # type: ignore[union-attr]
    await eventually(lambda: _all_delivered(pair, queued))
    assert await pair.delivered() == first + queued


async def _all_delivered(pair: Pair, sent: list[str]) -> bool:
    statuses = await pair.statuses()
    return all(statuses.get(m) == "delivered" for m in sent)


async def _failures(pair: Pair) -> int:
    return sum(e.attempts for e in await pair.cn.store.views.outbox())
