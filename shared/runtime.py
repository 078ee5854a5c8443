"""Process-level tuning shared by the services' `serve` commands."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from aiohttp import web


async def _freeze_startup_objects(_app: web.Application) -> None:
    # Everything allocated while starting (modules, settings, compiled policy, pools) lives for
    # the whole process; moving it out of the collector's reach keeps full collections short.
    gc.collect()
    gc.freeze()


def tune_gc(app: web.Application) -> None:
    """Fewer, cheaper garbage collections: a request allocates thousands of short-lived objects,
    and the default gen-0 threshold (700) triggers collections mid-request, which shows as p99."""
    gc.set_threshold(20_000, 20, 20)
    app.on_startup.append(_freeze_startup_objects)


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background task and wait until it has finished (no-op for None or a finished task)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
