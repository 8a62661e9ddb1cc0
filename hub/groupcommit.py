"""Group commit: many callers' writes in one transaction, none answered before it is durable.

Callers ``await committer.submit(items)``. One task takes everything submitted so far (up to
``max_items``) and hands it to ``apply`` as a single list, which writes it in one transaction;
each caller then gets its own slice of the results, or the exception. There is no timer: an
idle committer starts a transaction at once, and whatever arrives while one is committing goes
into the next. Under load the batch grows by itself, and one fsync serves many messages; when
quiet, a message waits for one transaction only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hub.errors import ShuttingDownError

Item = TypeVar("Item")
Result = TypeVar("Result")

log = logging.getLogger("customs_hub.groupcommit")


@dataclass
class _Job(Generic[Item, Result]):
    items: Sequence[Item]
    done: asyncio.Future[list[Result]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CommitterClosed(ShuttingDownError):
    pass


class GroupCommitter(Generic[Item, Result]):
    def __init__(
        self,
        apply: Callable[[list[Item]], Awaitable[list[Result]]],
        *,
        name: str,
        max_items: int = 1024,
    ) -> None:
        self._apply = apply
        self.name = name
        self.max_items = max_items
        self._pending: deque[_Job[Item, Result]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # figures for telemetry and tests
        self.transactions = 0
        self.items_committed = 0

    async def submit(self, items: Sequence[Item]) -> list[Result]:
        if self._closed:
            raise CommitterClosed(f"{self.name} is shut down")
        if not items:
            return []
        job: _Job[Item, Result] = _Job(items)
        self._pending.append(job)
        self._wake.set()
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"commit-{self.name}")
        return await job.done

    async def close(self) -> None:
        """Commit what was submitted, then stop taking more."""
        self._closed = True
        self._wake.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _take(self) -> list[_Job[Item, Result]]:
        taken: list[_Job[Item, Result]] = []
        count = 0
        while self._pending and (
            not taken or count + len(self._pending[0].items) <= self.max_items
        ):
            job = self._pending.popleft()
            taken.append(job)
            count += len(job.items)
        return taken

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._closed:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            jobs = self._take()
            items = [item for job in jobs for item in job.items]
            try:
                results = await self._apply(items)
            except asyncio.CancelledError:
                for job in jobs:
                    if not job.done.done():
                        job.done.set_exception(CommitterClosed(f"{self.name} was cancelled"))
                raise
            except Exception as exc:  # noqa: BLE001 - each caller sees its failure; the task lives on
                for job in jobs:
                    if not job.done.done():
                        job.done.set_exception(exc)
                continue
            if len(results) != len(items):
                error = RuntimeError(f"{self.name}: {len(results)} results for {len(items)} items")
                for job in jobs:
                    job.done.set_exception(error)
                continue
            self.transactions += 1
            self.items_committed += len(items)
            start = 0
            for job in jobs:
                end = start + len(job.items)
                if not job.done.done():  # a caller that gave up (cancelled) is not answered
                    job.done.set_result(results[start:end])
                start = end
