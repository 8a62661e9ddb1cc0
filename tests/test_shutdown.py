"""Graceful shutdown under load: SIGTERM to ``customs-hub serve`` processes while CN streams to
NZ, through a fault proxy the test controls, and while CN's domestic system keeps submitting.

docs/adr/0005: SIGTERM stops both servers taking new calls, stops writing frames, waits up to
``shutdown_grace_seconds`` for the receipts of frames in flight, commits what the committers
hold, and exits; whatever was abandoned is still queued and is resent. So each SIGTERM here
must end the process with exit code 0 within the grace (plus slack for the interpreter), and
after the restarts every message CN answered as queued must be at NZ exactly once. SQLite
stores (what a process does on SIGTERM does not depend on the store).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faultproxy import FaultProxy
from tests.hubprocess import (
    HubProcess,
    LoadGenerator,
    assert_delivered_once,
    make_federation,
    point_partner,
    processes,
    until,
)

DRAIN_SECONDS = 60.0
# Longer than the grace: a frame in flight to a hanging NZ is abandoned by the shutdown, not
# by the frame timeout.
PARTNER_TIMEOUT_SECONDS = 10.0


@pytest.mark.slow
async def test_sigterm_while_streaming_exits_in_time_and_loses_nothing(tmp_path: Path) -> None:
    hubs = make_federation(tmp_path, partner_timeout_seconds=PARTNER_TIMEOUT_SECONDS)
    cn, nz = hubs["CN"], hubs["NZ"]
    nz_port = int(nz.config.listen.rsplit(":", 1)[1])
    stopped: list[str] = []  # how long each SIGTERM took

    async def sigterm(hub: HubProcess) -> None:
        stopped.append(f"{hub.party} {await hub.stop_gracefully():.2f} s")

    async with FaultProxy("127.0.0.1", nz_port) as proxy:
        point_partner(cn, "NZ", proxy.address)
        with processes(hubs):
            for hub in hubs.values():
                hub.start()
            await asyncio.gather(cn.ready(), nz.ready())
            proxy.delay(0.1)  # a slow link: CN's queue builds up, frames stay in flight
            generator = LoadGenerator(cn, pause=0.1)
            enough = asyncio.Event()
            load = asyncio.create_task(generator.run_until(enough, size=50))
            seen = 0

            async def received_more() -> bool:
                """NZ received more since last asked."""
                nonlocal seen
                received, seen = seen, len((await nz.read()).inbound)
                return seen > received

            async def streaming() -> bool:
                """NZ received more since last asked, and CN still has a queue."""
                return await received_more() and len((await cn.read()).outbox) > 0

            # 1. CN is told to stop while it streams to NZ and its domestic system submits
            await until(streaming, 30, f"CN is not streaming to NZ{cn.tail()}")
            await sigterm(cn)
            await cn.restart()

            # 2. NZ is told to stop while CN streams to it
            await until(streaming, 30, f"CN is not streaming to NZ{cn.tail()}")
            await sigterm(nz)
            await nz.restart()

            # 3. CN is told to stop while NZ hangs: no receipt for its frames in flight comes,
            # so it waits out the grace, abandons them, and still exits cleanly
            proxy.heal()  # a fast link again: CN's connection is open and its window too
            await until(received_more, 30, f"CN is not streaming to NZ{cn.tail()}")
            proxy.blackhole()
            await asyncio.sleep(0.5)  # CN writes what is submitted meanwhile into the hang
            await sigterm(cn)
            proxy.heal()
            await cn.restart()

            await asyncio.sleep(0.5)
            enough.set()
            await load
            queued = generator.queued()

            async def cn_drained() -> bool:
                return (await cn.read()).outbox == []

            await until(cn_drained, DRAIN_SECONDS, f"CN's outbox never drained{cn.tail()}")
            for hub in (cn, nz):
                await sigterm(hub)
            assert_delivered_once(await cn.read(), await nz.read(), queued)
            print(  # what this run exercised, for whoever reads the log (pytest -s)
                f"SIGTERMs: {stopped}; {len(queued)} messages; "
                f"unanswered submissions: {len(generator.unanswered)}"
            )
