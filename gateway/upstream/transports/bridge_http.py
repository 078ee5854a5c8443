"""HTTP pieces of the bridge: JSON-RPC error bodies, and answering one call as JSON or as an
event stream carrying its progress notifications before the answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from gateway.upstream import sse
from gateway.upstream.transports.mux import Unavailable

JSON = "application/json"


def rpc(rid: Any, code: int, message: str) -> dict[str, Any]:
    """A JSON-RPC error response."""
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON body."""
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def lossy(queue: asyncio.Queue[dict[str, Any]]) -> Callable[[dict[str, Any]], None]:
    """Put each note on `queue`; a full queue drops it (a flood of progress is thinned, and a slow
    reader loses notes, not memory)."""

    def offer(note: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            queue.put_nowait(note)

    return offer


def event(message: dict[str, Any]) -> bytes:
    """One SSE `message` event."""
    return sse.json_event(message)


async def wait(task: asyncio.Task[dict[str, Any]], rid: Any) -> dict[str, Any]:
    """The task's answer, or a JSON-RPC error if the call was cancelled (by the caller or the deadline)."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if not task.cancelled():
            raise  # our own handler was cancelled
        return rpc(rid, -32800, "request cancelled")


async def stream(request: web.Request, task: asyncio.Task[dict[str, Any]], rid: Any,
                 notes: asyncio.Queue[dict[str, Any]]) -> web.StreamResponse:
    """JSON when no progress came before the answer; else an event stream: progress…, then the answer."""
    done = asyncio.ensure_future(wait(task, rid))
    try:
        first = await _first(done, notes)
        if first is None:  # no progress before the answer (or a failure): plain JSON
            return json_response(done.result())
        resp = web.StreamResponse(headers=sse.SSE_HEADERS)
        await resp.prepare(request)
        await resp.write(event(first))
        try:
            while (note := await _first(done, notes)) is not None:
                await resp.write(event(note))
            answer = done.result()
        except Unavailable as exc:  # the stream has begun: the failure is its last event
            answer = rpc(rid, -32000, exc.message)
        await resp.write(event(answer))
        return resp
    finally:
        done.cancel()


async def _first(done: asyncio.Future[dict[str, Any]], notes: asyncio.Queue[dict[str, Any]]) -> dict[str, Any] | None:
    """The next queued note, or None once the answer is in and no note is left."""
    while notes.empty() and not done.done():
        getter = asyncio.ensure_future(notes.get())
        await asyncio.wait({getter, done}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
    if not notes.empty():
        return notes.get_nowait()
    done.result()  # raise Unavailable here
    return None
