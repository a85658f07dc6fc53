"""Checking that work runs off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable

import anyio


async def loop_ticks_while(work: Awaitable[object]) -> int:
    """How many 10 ms sleeps the event loop completed while `work` ran (about 30 for 0.3 s on a free loop;
    a loop blocked by `work` manages 0 or 1)."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(0.01)
            ticks += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        try:
            await work
        finally:
            tg.cancel_scope.cancel()
    return ticks
