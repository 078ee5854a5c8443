"""Best-effort backend requests that outlive their caller: cancels and session ends.

They run as tasks kept here (so the GC does not collect them mid-flight) and are awaited, briefly,
when the pool closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_tasks: set[asyncio.Task[None]] = set()


def in_background(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` as a task the pool's `close` waits for."""
    task = asyncio.get_running_loop().create_task(work)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def drain_background(limit: float = 2.0) -> None:
    """Wait (up to `limit` seconds) for this loop's background cancels and session ends to finish."""
    loop = asyncio.get_running_loop()
    mine = {task for task in _tasks if task.get_loop() is loop}
    if mine:
        await asyncio.wait(mine, timeout=limit)
