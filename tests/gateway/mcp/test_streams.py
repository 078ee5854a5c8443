"""until_disconnect: the shared per-loop poller cancels only the request whose client left."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web

from gateway.mcp import streams


class Transport:
    """The one method until_disconnect reads from an aiohttp transport."""

    def __init__(self) -> None:
        self.closing = False

    def is_closing(self) -> bool:
        return self.closing


async def test_client_gone_cancels_only_its_own_request() -> None:
    left, stays = Transport(), Transport()
    cancelled: list[str] = []

    async def work(name: str, done: asyncio.Event) -> web.StreamResponse:
        try:
            await done.wait()
        except asyncio.CancelledError:
            cancelled.append(name)
            raise
        return web.StreamResponse(status=204)

    finish = asyncio.Event()
    req_left: Any = SimpleNamespace(transport=left)
    req_stays: Any = SimpleNamespace(transport=stays)
    a = asyncio.create_task(streams.until_disconnect(req_left, work("left", asyncio.Event())))
    b = asyncio.create_task(streams.until_disconnect(req_stays, work("stays", finish)))
    await asyncio.sleep(0)
    left.closing = True
    with pytest.raises(streams.ClientGone):
        await asyncio.wait_for(a, 2)
    assert cancelled == ["left"]
    finish.set()
    assert (await b).status == 204
    assert not b.cancelled()
    watcher = streams._watchers[asyncio.get_running_loop()]
    assert not watcher.watches
    await asyncio.sleep(streams.DISCONNECT_POLL * 2)
    assert watcher.handle is None  # idle: no timer left running


async def test_outside_cancellation_still_propagates() -> None:
    req: Any = SimpleNamespace(transport=Transport())
    task = asyncio.create_task(streams.until_disconnect(req, asyncio.Event().wait()))  # type: ignore[arg-type]
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_work_swallowing_the_cancel_is_still_client_gone() -> None:
    transport = Transport()
    req: Any = SimpleNamespace(transport=transport)

    async def stubborn() -> web.StreamResponse:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        return web.StreamResponse()

    task = asyncio.create_task(streams.until_disconnect(req, stubborn()))
    await asyncio.sleep(0)
    transport.closing = True
    with pytest.raises(streams.ClientGone):
        await asyncio.wait_for(task, 2)
