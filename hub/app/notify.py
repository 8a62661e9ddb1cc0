"""A wake-up signal for tasks that wait for new rows (outbox worker, subscriptions)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class Notifier:
    """``notify()`` wakes every current ``wait()``; waiters also wake on their timeout, so a
    missed signal (or a write by another replica) costs at most one poll interval."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> None:
        """Also call ``callback`` on every notify (e.g. to set a task's own wake-up event)."""
        self._listeners.append(callback)

    def notify(self) -> None:
        self._event.set()
        self._event = asyncio.Event()
        for callback in self._listeners:
            callback()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
