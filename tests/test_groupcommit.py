"""The group committer: lanes share transactions, keep their order and fail alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from hub.store.db import Store
from hub.store.groupcommit import CommitterClosed, GroupCommitter
from hub.store.schema import NewOutbound, ReceiptRow, Settlement


class Recorder:
    """A stand-in transaction runner (named as such): it runs the work against a list that
    records what each transaction wrote, and can be told to fail a transaction."""

    def __init__(self) -> None:
        self.transactions: list[list[tuple[str, Any]]] = []
        self.fail_when: Callable[[list[tuple[str, Any]]], bool] = lambda _: False

    async def __call__(self, fn: Callable[[Any], Any]) -> Any:
        await asyncio.sleep(0.001)  # a commit takes time: submissions pile up meanwhile
        written: list[tuple[str, Any]] = []
        result = fn(written)
        if self.fail_when(written):
            raise RuntimeError("disk on fire")
        self.transactions.append(written)
        return result


def writer(name: str) -> Callable[[list[tuple[str, Any]], list[int]], list[int]]:
    def apply(tx: list[tuple[str, Any]], items: list[int]) -> list[int]:
        tx.extend((name, i) for i in items)
        return [i * 10 for i in items]

    return apply


async def test_lanes_share_a_transaction_and_each_caller_gets_its_results() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, name="t")
    a = committer.lane("a", writer("a"))
    b = committer.lane("b", writer("b"))
    first = asyncio.create_task(a.submit([1]))  # starts a transaction at once, alone
    await asyncio.sleep(0)
    results = await asyncio.gather(a.submit([2, 3]), b.submit([4]), a.submit([5]), first)
    assert results == [[20, 30], [40], [50], [10]]
    assert recorder.transactions == [[("a", 1)], [("a", 2), ("a", 3), ("a", 5), ("b", 4)]]
    assert (a.transactions, a.items_committed, b.transactions) == (2, 4, 1)
    await committer.close()


async def test_a_full_lane_waits_in_order_while_others_fill_the_transaction() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, name="t", max_items=100)
    small = committer.lane("small", writer("s"), max_items=2)
    big = committer.lane("big", writer("b"))
    blocker = asyncio.create_task(big.submit([0]))
    await asyncio.sleep(0)
    await asyncio.gather(
        small.submit([1, 2]), small.submit([3]), big.submit([7, 8]), small.submit([4]), blocker
    )
    written = [[i for _, i in t] for t in recorder.transactions]
    assert written == [[0], [1, 2, 7, 8], [3, 4]]
    await committer.close()


async def test_a_job_larger_than_the_caps_goes_alone() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, name="t", max_items=4)
    lane = committer.lane("a", writer("a"), max_items=2)
    assert await lane.submit([1, 2, 3, 4, 5, 6]) == [10, 20, 30, 40, 50, 60]
    await committer.close()


async def test_a_failing_lane_fails_alone() -> None:
    recorder = Recorder()
    recorder.fail_when = lambda written: ("bad", 2) in written
    committer = GroupCommitter(recorder, name="t")
    good = committer.lane("good", writer("good"))
    bad = committer.lane("bad", writer("bad"))
    first = asyncio.create_task(good.submit([0]))
    await asyncio.sleep(0)
    outcomes = await asyncio.gather(
        good.submit([1]), bad.submit([2]), bad.submit([3]), first, return_exceptions=True
    )
    assert outcomes[0] == [10] and outcomes[3] == [0]
    assert all(isinstance(o, RuntimeError) for o in outcomes[1:3])  # one transaction, both fail
    # the failed transaction wrote nothing; the good lane's items were written once, alone
    assert recorder.transactions == [[("good", 0)], [("good", 1)]]
    assert await bad.submit([5]) == [50]  # the committer lives on
    await committer.close()


async def test_committed_hook_runs_before_callers_hear_and_cannot_fail_them() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, name="t")
    seen: list[list[int]] = []

    def hook(items: list[int], results: list[int]) -> None:
        seen.append(results)
        raise ValueError("a listener's bug")

    lane = committer.lane("a", writer("a"), committed=hook)
    assert await lane.submit([1, 2]) == [10, 20]
    assert seen == [[10, 20]]
    await committer.close()


async def test_a_failing_observer_cannot_fail_or_hang_the_callers() -> None:
    # the observer is the hub's metrics: a bug or an exporter's failure there must not leave
    # a durable commit unanswered (the committer's task would die, and every writer wait)
    recorder = Recorder()
    told: list[str] = []

    def observe(lane: str, seconds: float) -> None:
        told.append(lane)
        raise ValueError("a metrics bug")

    committer = GroupCommitter(recorder, name="t", observe=observe)
    lane = committer.lane("a", writer("a"))
    assert await asyncio.wait_for(lane.submit([1, 2]), 5) == [10, 20]
    assert await asyncio.wait_for(lane.submit([3]), 5) == [30]  # the committer lives on
    assert told == ["a", "a"]
    await committer.close()


async def test_close_commits_what_was_submitted_then_refuses_more() -> None:
    recorder = Recorder()
    committer = GroupCommitter(recorder, name="t")
    lane = committer.lane("a", writer("a"))
    pending = [asyncio.create_task(lane.submit([i])) for i in range(5)]
    await asyncio.sleep(0)
    await committer.close()
    assert [await p for p in pending] == [[0], [10], [20], [30], [40]]
    with pytest.raises(CommitterClosed):
        await lane.submit([9])


async def test_queueing_and_settling_share_one_real_transaction(store_url: str) -> None:
    store = Store(store_url)
    try:
        await store.prepare(create=True)
        now = datetime.now(UTC)

        def outbound(n: int) -> NewOutbound:
            return NewOutbound(
                message_id=f"01900000-0000-7000-8000-{n:012d}",
                recipient="NZ",
                body_type="customs_hub.v1.AeoStatus",
                envelope=b"e%d" % n,
                envelope_digest=b"d" * 32,
                created_at=now,
                expires_at=now + timedelta(days=1),
            )

        [first] = await store.outbox.enqueue([outbound(1)])
        committer = GroupCommitter(store.db.write, name="real")
        queue = committer.lane("queue", lambda tx, ms: store.outbox.enqueue_in(tx, ms))
        settle = committer.lane(
            "settle", lambda tx, ss: (store.outbox.settle_in(tx, ss), [None] * len(ss))[1]
        )
        receipt = ReceiptRow(first.message_id, "NZ", "accepted", b"r", now, "", b"d" * 32)
        blocker = asyncio.create_task(queue.submit([outbound(2)]))
        await asyncio.sleep(0)
        await asyncio.gather(
            queue.submit([outbound(3)]), settle.submit([Settlement(first, receipt)]), blocker
        )
        assert committer.transactions == 2  # the blocker, then both lanes together
        statuses = {m.message_id[-1]: m.status for m, _ in await store.views.outbound()}
        assert statuses == {"1": "delivered", "2": "queued", "3": "queued"}
        kinds = [e.kind for e in map(_decode, await store.trail.leaves())]
        assert kinds == ["queued", "queued", "queued", "delivered"]
        await committer.close()
    finally:
        await store.close()


def _decode(leaf: bytes) -> Any:
    from hub.trail import events as trail

    return trail.decode(leaf)
