"""Process-level tuning shared by the services' `serve` commands."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib.util

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


def uvloop_installed() -> bool:
    """Whether the optional `uvloop` package can be imported."""
    return importlib.util.find_spec("uvloop") is not None


def event_loop_problem(choice: str) -> str | None:
    """Why `choice` (MCPGW_EVENT_LOOP) cannot be honoured here, or None."""
    if choice == "uvloop" and not uvloop_installed():
        return "MCPGW_EVENT_LOOP=uvloop but uvloop is not installed (pip install 'mcpgw[uvloop]')"
    return None


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """The loop a service runs on: uvloop for `uvloop`, and for `auto` when it is installed."""
    if choice == "uvloop" or (choice == "auto" and uvloop_installed()):
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def cancel_and_wait(task: asyncio.Task[object] | None) -> None:
    """Cancel a background task and wait until it has finished (no-op for None or a finished task)."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
