"""Ending a task for certain (hub/app/tasks.py): a loop that swallows a cancellation, as an
``asyncio.wait_for`` racing its inner await can on Python 3.11, is cancelled again until it
ends, so a stopping hub does not hang on it."""

from __future__ import annotations

import asyncio

from hub.app.tasks import cancel_and_wait


async def test_a_task_that_swallows_one_cancellation_is_ended_all_the_same() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(0.05)
            except asyncio.CancelledError:
                if swallowed == 0:  # the first one is lost, as in the race
                    swallowed += 1
                    continue
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0.01)
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.cancelled() and swallowed == 1


async def test_a_task_already_ended_or_none_is_left_as_it_is() -> None:
    async def fails() -> None:
        raise ValueError("logged where it happened")

    task = asyncio.create_task(fails())
    await asyncio.wait({task})
    await cancel_and_wait(task)  # its exception is not raised here
    await cancel_and_wait(None)
    assert isinstance(task.exception(), ValueError)
