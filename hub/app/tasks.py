"""Ending a task for certain.

``task.cancel()`` followed by ``await task`` waits for ever if the task does not end: on
Python 3.11 an ``asyncio.wait_for`` whose inner await finishes just as the cancellation comes
can swallow it (python/cpython#86296), and a loop around it then goes on. A hub that stops
must not hang on one of its own loops, so each is cancelled again until it has ended.
"""

from __future__ import annotations

import asyncio
import contextlib

# How long one cancellation is given before it is sent again.
RECANCEL_SECONDS = 0.5


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel ``task`` (again, as often as needed) and wait until it has ended; what it
    raised on the way out is not this caller's concern (it was logged where it happened)."""
    if task is None:
        return
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=RECANCEL_SECONDS)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()
