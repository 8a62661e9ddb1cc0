"""Reliable delivery between real hubs over mTLS: streaming with batch receipts, group commits,
a partner that starts late, dead letters and the operator's outbox commands. A partner that
misbehaves is simulated in memory (tests/test_delivery_sim.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import grpc
import pytest

from hub.app.delivery import OutboxWorker, PartnerSender
from hub.app.hub import Hub
from hub.app.submission import Submission
from hub.cli.demo import sample_aeo_status
from hub.core.envelope import verify_receipt
from hub.pb.customs_hub.v1 import envelope_pb2 as pb
from hub.pb.customs_hub.v1 import service_pb2 as spb
from hub.pb.customs_hub.v1 import service_pb2_grpc as sgrpc
from hub.runtime import RunningHub
from hub.store.db import Store
from hub.trail import events as trail
from tests.conftest import Federation
from tests.test_exchange import eventually, nz_signing_key

CLI = [sys.executable, "-m", "hub.cli.main"]


def aeo_requests(n: int, issuer: str = "CN", to: str = "NZ") -> list[spb.SubmitRequest]:
    return [
        spb.SubmitRequest(
            aeo_status=sample_aeo_status(issuer, f"{issuer}AEO{i:06d}"), recipients=[to]
        )
        for i in range(n)
    ]


async def submit_batch(running: RunningHub, requests: list[spb.SubmitRequest]) -> list[str]:
    """Submit through Domestic.SubmitBatch; returns the queued message ids in order."""
    async with grpc.aio.insecure_channel(running.config.domestic_listen) as channel:
        response = await sgrpc.DomesticStub(channel).SubmitBatch(
            spb.SubmitBatchRequest(requests=requests), timeout=30
        )
    ids = []
    for result in response.results:
        assert result.WhichOneof("result") == "queued", result
        ids += [q.message_id for q in result.queued.queued]
    return ids


def fast_retries(federation: Federation, party: str, **limits: float) -> None:
    """Shorter retry waits than production, so outage tests take seconds."""
    config = federation.configs[party]
    changes = {"retry_initial_seconds": 0.2, "retry_max_seconds": 1.0, "poll_seconds": 0.2}
    changes.update(limits)
    federation.configs[party] = dataclasses.replace(
        config,
        limits=dataclasses.replace(config.limits, **changes),  # type: ignore[arg-type]
    )


async def drained(running: RunningHub) -> bool:
    return not [e for e in await running.hub.store.views.outbox() if e.state == "queued"]


async def test_streamed_delivery_keeps_order_and_batch_receipts_verify_one_by_one(
    federation: Federation, pki: Path
) -> None:
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    sent = []
    for _ in range(3):
        sent += await submit_batch(cn, aeo_requests(200))
    await eventually(lambda: drained(cn), timeout=60)
    # NZ holds every message once, in the order CN queued them
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == sent
    keys = nz_signing_key(pki)
    rows = await cn.hub.store.views.outbound()
    assert [m.message_id for m, _ in rows] == sent
    sizes = set()
    for message, record in rows:
        assert message.status == "delivered" and record is not None
        # written once: a message sent twice (read back from the store and also handed over
        # from memory) would have been answered "duplicate"
        assert record.outcome == "accepted"
        signed = pb.SignedReceipt.FromString(record.signed_receipt)
        # each receipt verifies alone: its proof leads to the root NZ signed once per batch
        receipt = verify_receipt(signed, "NZ", keys)
        assert receipt.message_id == message.message_id
        assert receipt.envelope_digest == message.envelope_digest
        sizes.add(signed.batch.size)
    assert max(sizes) > 1  # receipts were signed in batches
    # and the commits were grouped on both sides
    assert nz.hub.ingress.commits.transactions < len(sent) / 4
    assert cn.worker.settlements.transactions < len(sent) / 4


async def test_a_partner_that_starts_late_is_reached_over_mtls_and_drains_in_order(
    federation: Federation,
) -> None:
    """The real network's side of tests/test_delivery_sim.py's down partner: connections to a
    port nobody listens on fail, back off, and succeed once the partner's server starts."""
    fast_retries(federation, "CN")
    cn = await federation.start("CN")
    nz = await federation.start("NZ")  # SG stays down for now
    to_sg = await submit_batch(cn, aeo_requests(30, to="SG"))
    to_nz = await submit_batch(cn, aeo_requests(30, to="NZ"))

    async def nz_has_all() -> bool:
        return len(await nz.hub.store.views.inbound()) == len(to_nz)

    await eventually(nz_has_all)

    async def sg_retried() -> bool:
        entries = [e for e in await cn.hub.store.views.outbox() if e.partner == "SG"]
        return len(entries) == len(to_sg) and all(e.attempts >= 1 for e in entries[:1])

    await eventually(sg_retried)
    more_to_sg = await submit_batch(cn, aeo_requests(20, to="SG"))
    rows = await cn.hub.store.views.outbox_rows(datetime.now(UTC))
    assert {r.state for r in rows if r.partner == "SG"} <= {"queued", "retrying"}
    sg = await federation.start("SG")
    await eventually(lambda: drained(cn), timeout=30)
    # the queue drained in creation order
    assert [m.message_id for m in await sg.hub.store.views.inbound()] == to_sg + more_to_sg


@pytest.mark.slow
async def test_expired_messages_become_dead_letters_that_operators_retry_or_drop(
    federation: Federation,
) -> None:
    # messages that live two seconds, while NZ is down
    fast_retries(federation, "CN", message_ttl_seconds=2.0)
    cn = await federation.start("CN")
    first = await submit_batch(cn, aeo_requests(2))

    async def dead() -> bool:
        rows = await cn.hub.store.views.outbox_rows(datetime.now(UTC))
        return all(r.state == "dead" and r.attempts >= 1 for r in rows)

    await eventually(dead)
    await federation.stop("CN")
    config = str(federation.configs["CN"].path)
    listed = cli("outbox", "--config", config, "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["message_id"], r["state"]) for r in rows] == [(m, "dead") for m in first]
    assert all(r["reason"].startswith("expired undelivered") for r in rows)
    assert "UNAVAILABLE" in rows[0]["reason"]  # the last error is kept with it
    # one is dropped, the other retried: it expired, so it is signed afresh under a new id
    dropped = cli("outbox", "drop", "--config", config, "--message-id", first[0])
    assert dropped.returncode == 0 and f"dropped {first[0]}" in dropped.stdout
    retried = cli("outbox", "retry", "--config", config, "--message-id", first[1])
    assert retried.returncode == 0, retried.stderr
    new_id = retried.stdout.split()[-1]
    assert retried.stdout.startswith(f"re-signed {first[1]} as ") and new_id != first[1]
    nothing = cli("outbox", "retry", "--config", config, "--message-id", first[0])
    assert nothing.returncode == 2 and "no matching dead letters" in nothing.stderr
    cn = await federation.start("CN")
    nz = await federation.start("NZ")
    await eventually(lambda: drained(cn))
    assert [m.message_id for m in await nz.hub.store.views.inbound()] == [new_id]
    status = {m.message_id: m.status for m, _ in await cn.hub.store.views.outbound()}
    assert status == {first[0]: "dead", first[1]: "replaced", new_id: "delivered"}
    # the operators' actions are in the trail, after the expiry that made the dead letters
    events = [trail.decode(leaf) for leaf in await cn.hub.store.trail.leaves()]
    about = {m: [(e.kind, e.detail) for e in events if e.message_id == m] for m in (*first, new_id)}
    assert [k for k, _ in about[first[0]]][-2:] == ["dead-lettered", "dropped"]
    assert about[first[0]][-1] == ("dropped", "dropped by an operator")
    assert about[first[1]][-1] == ("requeued", f"an operator re-signed it as {new_id}")
    assert [k for k, _ in about[first[1]]][-2:] == ["dead-lettered", "requeued"]
    kinds = [k for k, _ in about[new_id]]
    assert (kinds[0], kinds[-1]) == ("queued", "delivered")  # failed tries may be between


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=60, check=False)


async def test_resubmission_with_the_same_submission_id_queues_nothing_twice(
    federation: Federation,
) -> None:
    cn = await federation.start("CN")
    request = spb.SubmitRequest(
        aeo_status=sample_aeo_status("CN", "CNAEO1"), recipients=["NZ"], submission_id="batch-7/1"
    )
    async with grpc.aio.insecure_channel(cn.config.domestic_listen) as channel:
        stub = sgrpc.DomesticStub(channel)
        first = await stub.Submit(request, timeout=10)
        again = await stub.Submit(request, timeout=10)
        batch = await stub.SubmitBatch(spb.SubmitBatchRequest(requests=[request] * 3), timeout=10)
    assert again == first
    assert all(r.queued == first for r in batch.results)
    assert len(await cn.hub.store.views.outbound()) == 1


async def test_a_sender_sends_each_entry_once_whether_read_back_or_handed_over(
    federation: Federation,
) -> None:
    """New entries reach a sender twice over: handed over from memory when committed, and in
    any store read that overlaps. Each must be taken once, and the sender reads the store
    again whenever memory may have missed something."""
    store = Store(federation.configs["CN"].store_url)
    try:
        await store.prepare(create=True)
        hub = Hub(federation.configs["CN"], store)
        sender = PartnerSender(OutboxWorker(hub, transport=None), "NZ")  # type: ignore[arg-type]
        first = await hub.submission.submit_many(
            [Submission(sample_aeo_status("CN", "A1"), ["NZ"])] * 3
        )
        assert not sender.synced and len(sender.fresh) == 3  # handed over, not yet trusted
        read = await sender._due(100)  # the store read finds the same three
        queued = [q.message_id for r in first for q in r]  # type: ignore[union-attr]
        assert [d.message_id for d in read] == queued
        assert sender.synced
        sender.cursor = read[-1].entry_id  # written to the stream
        assert await sender._due(100) == []  # the copies in memory are not taken again
        more = await hub.submission.submit_many(
            [Submission(sample_aeo_status("CN", "A2"), ["NZ"])] * 2
        )
        taken = await sender._due(100)
        assert [d.message_id for d in taken] == [q.message_id for r in more for q in r]  # type: ignore[union-attr]
        # a partner too far behind: memory is dropped and the store is read again
        sender.fresh_limit = 3
        await hub.submission.submit_many([Submission(sample_aeo_status("CN", "A3"), ["NZ"])] * 4)
        assert not sender.synced and not sender.fresh
        sender.cursor = taken[-1].entry_id
        assert len(await sender._due(100)) == 4
        # memory dropped while a store read is under way: that read cannot vouch for what
        # was dropped after it began, so the sender stays unsynced
        sender.synced = False
        reading = asyncio.create_task(sender._due(100))
        await asyncio.sleep(0)  # the read has begun and waits on the store
        sender._forget()
        await reading
        assert not sender.synced
    finally:
        await hub.close()
        await store.close()
