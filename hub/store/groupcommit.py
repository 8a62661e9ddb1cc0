"""Group commit: many callers' writes in one transaction, none answered before it is durable.

A hub has one ``GroupCommitter`` and several ``Lane``s on it, one per kind of write (inbound
messages, new outbound messages, partners' receipts). Callers ``await lane.submit(items)``. One
task takes everything submitted so far, on every lane, and writes it in a single transaction:
each lane's ``apply`` gets its items as one list, in the order they were submitted; then each
caller gets its own slice of its lane's results, or the exception.

There is no timer: an idle committer starts a transaction at once, and whatever arrives while
one is committing goes into the next. Under load the batch grows by itself, and one fsync
serves many messages of every kind; when quiet, a message waits for one transaction only.

A transaction that fails with several lanes in it is tried again lane by lane, so a fault in
one kind of write fails only its own callers; one whose data the store refused (a constraint
it breaks: ``StoreDataError``) is tried again caller by caller, so one caller's data fails
only that caller. (An unavailable store is not: every caller would fail again, one by one.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hub.core.errors import ShuttingDownError, StoreDataError

Item = TypeVar("Item")
Result = TypeVar("Result")
T = TypeVar("T")

# Runs its argument in one writing transaction (Database.transaction) and returns what it returned.
Transact = Callable[[Callable[[Any], Any]], Awaitable[Any]]

log = logging.getLogger("customs_hub.groupcommit")


class CommitterClosed(ShuttingDownError):
    pass


@dataclass
class _Job:
    lane: Lane[Any, Any]
    items: Sequence[Any]
    done: asyncio.Future[list[Any]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class Lane(Generic[Item, Result]):
    """One kind of write on a committer. ``apply(tx, items)`` writes ``items`` inside the
    transaction and returns one result per item; ``committed(items, results)``, if given, is
    called once the transaction is durable and before any caller hears of it."""

    def __init__(
        self,
        committer: GroupCommitter,
        name: str,
        apply: Callable[[Any, list[Item]], list[Result]],
        committed: Callable[[list[Item], list[Result]], None] | None,
        max_items: int,
    ) -> None:
        self._committer = committer
        self.name = name
        self.apply = apply
        self.committed = committed
        self.max_items = max_items
        # figures for telemetry and tests
        self.transactions = 0
        self.items_committed = 0

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        return await self.enqueue(items)

    def enqueue(self, items: Sequence[Item]) -> asyncio.Future[list[Result]]:
        """``submit``, in two steps: the items take their place in the order of the calls now,
        and the future they return is awaited for their results."""
        return self._committer._enqueue(self, items)


class GroupCommitter:
    def __init__(
        self,
        transact: Transact,
        *,
        name: str,
        max_items: int = 1024,
        observe: Callable[[str, float], None] | None = None,
    ) -> None:
        self._transact = transact
        self.name = name
        self.max_items = max_items
        # told each committed transaction's seconds, once per lane in it (the hub's metrics)
        self.observe = observe
        self._pending: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.transactions = 0

    def lane(
        self,
        name: str,
        apply: Callable[[Any, list[Item]], list[Result]],
        *,
        committed: Callable[[list[Item], list[Result]], None] | None = None,
        max_items: int | None = None,
    ) -> Lane[Item, Result]:
        """A new kind of write; ``max_items`` caps its share of one transaction."""
        return Lane(self, name, apply, committed, max_items or self.max_items)

    def _enqueue(
        self, lane: Lane[Item, Result], items: Sequence[Item]
    ) -> asyncio.Future[list[Result]]:
        if self._closed:
            raise CommitterClosed(f"{self.name} is shut down")
        job = _Job(lane, items)
        if not items:
            job.done.set_result([])
            return job.done
        self._pending.append(job)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"commit-{self.name}")
        return job.done

    async def close(self) -> None:
        """Commit what was submitted, then stop taking more."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _take(self) -> list[_Job]:
        """The jobs for one transaction, oldest first: as many as fit in ``max_items`` in
        all, and in each lane's own cap (a job larger than a cap goes alone). A lane that is
        full keeps its later jobs back, in order; other lanes may still fill up."""
        taken: list[_Job] = []
        kept: list[_Job] = []
        counts: dict[Lane[Any, Any], int] = {}
        full: set[Lane[Any, Any]] = set()
        total = 0
        while self._pending:
            job = self._pending[0]
            size = len(job.items)
            if taken and total + size > self.max_items:
                break
            self._pending.popleft()
            held = counts.get(job.lane, 0)
            if job.lane in full or (held and held + size > job.lane.max_items):
                full.add(job.lane)
                kept.append(job)
                continue
            counts[job.lane] = held + size
            total += size
            taken.append(job)
        self._pending.extendleft(reversed(kept))
        return taken

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            groups: dict[Lane[Any, Any], list[_Job]] = {}
            for job in self._take():
                groups.setdefault(job.lane, []).append(job)
            await self._commit(list(groups.items()))

    async def _commit(self, groups: list[tuple[Lane[Any, Any], list[_Job]]]) -> None:
        batches = [[item for job in jobs for item in job.items] for _, jobs in groups]

        def work(tx: Any) -> list[list[Any]]:
            return [lane.apply(tx, items) for (lane, _), items in zip(groups, batches, strict=True)]

        began = time.perf_counter() if self.observe is not None else 0.0  # none when off
        try:
            results = await self._transact(work)
        except asyncio.CancelledError:
            for _, jobs in groups:
                _fail(jobs, CommitterClosed(f"{self.name} was cancelled"))
            raise
        except Exception as exc:  # noqa: BLE001 - each caller sees its failure; the task lives on
            if len(groups) > 1:
                for group in groups:
                    await self._commit([group])
                return
            lane, jobs = groups[0]
            if isinstance(exc, StoreDataError) and len(jobs) > 1:
                for job in jobs:
                    await self._commit([(lane, [job])])
                return
            _fail(jobs, exc)
            return
        self.transactions += 1
        if self.observe is not None:
            seconds = time.perf_counter() - began
            try:
                for lane, _ in groups:
                    self.observe(lane.name, seconds)
            except Exception:  # the write is durable: its callers are answered whatever happens
                log.exception("%s: observing the commit failed", self.name)
        for (lane, jobs), items, lane_results in zip(groups, batches, results, strict=True):
            if len(lane_results) != len(items):
                count = f"{len(lane_results)} results for {len(items)} items"
                _fail(jobs, RuntimeError(f"{lane.name}: {count}"))
                continue
            lane.transactions += 1
            lane.items_committed += len(items)
            if lane.committed is not None:
                try:
                    lane.committed(items, lane_results)
                except Exception:  # the write is durable whatever a listener does
                    log.exception("%s: after-commit hook failed", lane.name)
            start = 0
            for job in jobs:
                end = start + len(job.items)
                if not job.done.done():  # a caller that gave up (cancelled) is not answered
                    job.done.set_result(lane_results[start:end])
                start = end


def _fail(jobs: Sequence[_Job], error: BaseException) -> None:
    for job in jobs:
        if not job.done.done():
            job.done.set_exception(error)
