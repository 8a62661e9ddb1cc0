"""A wake-up signal for tasks that wait for new rows (outbox worker, subscriptions)."""

from __future__ import annotations

import asyncio
import contextlib


class Notifier:
    """``notify()`` wakes every current ``wait()``; waiters also wake on their timeout, so a
    missed signal (or a write by another replica) costs at most one poll interval."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
