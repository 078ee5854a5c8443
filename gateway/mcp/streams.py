"""Relaying a backend's answer to the client: JSON as is, SSE event by event, the answer rewritten.

Only MCP's own headers cross the passthrough (allowlist): the client's Authorization, cookies and
Host never reach a backend; its credential and Host are added by gateway/upstream/sender.py only.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from gateway.masking import leaks, masked_response, scrub
from gateway.mcp import protocol
from gateway.mcp.state import McpState
from gateway.upstream import codec, sse
from gateway.upstream.errors import CallBudgetExceeded, ResponseTooLarge, UpstreamError
from gateway.upstream.sender import read_capped
from shared.jsonutil import dumps

T = TypeVar("T")
Rewrite = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
Observer = Callable[[dict[str, Any]], None]  # shown the JSON-RPC answer to the request, unchanged
DISCONNECT_POLL = 0.05
# Mcp-Method / Mcp-Name / Mcp-Param-* are never copied from the client: the passthrough rebuilds
# them from the body it checked (protocol.routing_headers), so a backend never routes on a claim.
FORWARDED = ("accept", "content-type", "mcp-protocol-version", "last-event-id")
# Backend response headers a client may see (never Set-Cookie or the backend's session id).
RETURNED = ("content-type", "cache-control", "allow")


def forward_headers(incoming: Mapping[str, str], upstream_session: str | None) -> dict[str, str]:
    """The headers to send upstream: the allowlisted MCP headers only, plus the backend's session id."""
    out = {name: value for name, value in incoming.items() if name.lower() in FORWARDED}
    if upstream_session:
        out["Mcp-Session-Id"] = upstream_session
    return out


def returned_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Backend response headers worth passing back."""
    return {k: v for k, v in upstream.items() if k.lower() in RETURNED}


def masked_answer(raw: bytes, forms: Sequence[str]) -> bytes:
    """A backend's body with the server's credential `forms` masked; one naming no "error" and
    showing no trace of a form is not parsed, one that is no JSON but shows a trace is scrubbed."""
    if not forms:
        return raw
    trace = leaks(raw, forms)
    if not trace and b'"error"' not in raw:
        return raw
    msg = codec.loads_or_none(raw)
    if msg is None:
        return scrub(raw.decode("utf-8", "replace"), forms).encode() if trace else raw
    masked = masked_response(msg, forms, trace=trace)
    return raw if masked is msg else dumps(masked)


def masked_event(event: sse.Event, forms: Sequence[str], msg: Any = None) -> tuple[Any, sse.Event]:
    """An SSE event as the client may see it, and its message masked (`msg`: its data parsed, if at
    hand). An event showing a trace anywhere is rebuilt from its masked fields (comments, `retry:`
    and unknown fields dropped); one naming an error gets its error masked."""
    data = event.data
    if not leaks(event.raw, forms):
        if data is None or '"error"' not in data:
            return msg, event
        msg = codec.loads_or_none(data) if msg is None else msg
        if (masked := masked_response(msg, forms, trace=False)) is msg:
            return msg, event
        return masked, sse.Event(sse.json_event(masked, event=event.event, id=event.id), data, event.event, event.id)
    name, eid = scrub(event.event, forms), None if event.id is None else scrub(event.id, forms)
    if data is None:  # a comment or a bare id: only the id matters to a client
        return None, sse.Event(b"" if eid is None else f"id: {eid}\n\n".encode(), None, name, eid)
    msg = codec.loads_or_none(data) if msg is None else msg
    if msg is None:  # not JSON: its text scrubbed
        return None, sse.Event(sse.encode(scrub(data, forms), event=name, id=eid), data, name, eid)
    masked = masked_response(msg, forms, trace=True)
    return masked, sse.Event(sse.json_event(masked, event=name, id=eid), data, name, eid)


def masked_rest(rest: bytes, forms: Sequence[str]) -> bytes:
    """An unterminated last block (never dispatched by a client): as it is, or nothing if it shows
    a trace of `forms`."""
    return b"" if forms and leaks(rest, forms) else rest


class ClientGone(Exception):
    """The client closed its connection; the upstream request was cancelled."""


async def _rewritten(msg: dict[str, Any], rewrite: Rewrite) -> dict[str, Any]:
    """`msg` with its result rewritten; `msg` itself when the rewrite kept the result (relayed byte for byte)."""
    result = msg.get("result")
    if isinstance(result, dict) and (new := await rewrite(result)) is not result:
        return {**msg, "result": new}
    return msg


async def relay_answer(
    request: web.Request, state: McpState, endpoint: str, resp: aiohttp.ClientResponse, rid: protocol.RequestId,
    rewrite: Rewrite | None, server: str, cancel: Callable[[], Awaitable[None]] | None = None,
    idle_limit: float | None = None, observe: Observer | None = None, forms: Sequence[str] = (),
) -> web.StreamResponse:
    """Send the backend's answer on: SSE unbuffered, byte for byte but for the answer to `rid` (which
    `rewrite` may replace) and the credential `forms`, masked in every message (`masked_event`).

    Past `mcp_max_response_bytes` a JSON answer is a 502; past that per event, `mcp_max_call_bytes`
    for a call's stream (`cancel()` tells a 2025-era backend), `idle_limit` quiet, or a break, a
    started SSE answer ends with a JSON-RPC error for the pending request, never a second response.
    """
    if resp.content_type != "text/event-stream":
        raw = await read_capped(resp, server, state.settings.mcp_max_response_bytes)
        # An observer needs only failures (isError, a JSON-RPC error): a body naming neither is not parsed.
        # A key may be written \u-escaped (`"\u0069sError"` is isError to any parser): such a body is.
        watched = observe is not None and (b"isError" in raw or b'"error"' in raw or b"\\u" in raw)
        raw = masked_answer(raw, forms)
        if (rewrite is not None or watched) and resp.status == 200:
            msg = codec.loads_or_none(raw)
            if codec.is_response_to(msg, rid):
                if observe is not None:
                    observe(msg)
                if rewrite is not None and (new := await _rewritten(msg, rewrite)) is not msg:
                    raw = dumps(new)
        if resp.status == 202 or not raw:
            return web.Response(status=resp.status)
        return web.Response(body=raw, status=resp.status, headers=returned_headers(resp.headers))
    out = web.StreamResponse(status=resp.status, headers=sse.SSE_HEADERS)
    gauge = state.metrics.streams_open.labels(endpoint)
    gauge.inc()
    answered = rid is None  # has the response to the client's request gone out yet?
    parser = sse.Parser()
    try:
        await out.prepare(request)
        async for event in sse.events(resp, server, state.settings.mcp_max_response_bytes, parser=parser, idle_limit=idle_limit,
                                      budget=None if rid is None else sse.Budget(state.settings.mcp_max_call_bytes)):
            msg = codec.loads_or_none(event.data) if not answered and event.data else None
            if forms:  # the answer as anything else the backend sends (progress, a log message, a request)
                masked, event = masked_event(event, forms, msg)
                msg = masked if msg is not None else None
            raw = event.raw
            if msg is not None and codec.is_response_to(msg, rid):
                answered = True
                if observe is not None:
                    observe(msg)
                if rewrite is not None and (new := await _rewritten(msg, rewrite)) is not msg:
                    raw = sse.json_event(new, event=event.event, id=event.id)
            if raw:
                await out.write(raw)
        if rest := masked_rest(parser.rest(), forms):
            await out.write(rest)
        await out.write_eof()
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        pass  # the client left; leaving the `async with` closes the backend stream too
    except UpstreamError as exc:
        state.metrics.upstream_errors.labels(server).inc()
        if isinstance(exc, CallBudgetExceeded):
            resp.close()
            if cancel is not None:
                await cancel()
        pending = rid if isinstance(exc, (CallBudgetExceeded, ResponseTooLarge)) else None if answered else rid
        with contextlib.suppress(ConnectionResetError):
            await _last_error(out, pending, str(exc))
    finally:
        gauge.dec()
    return out


async def _last_error(out: web.StreamResponse, rid: protocol.RequestId, message: str) -> None:
    """End a started SSE answer: a JSON-RPC error for the pending request (if any), then EOF."""
    if rid is not None:
        await out.write(sse.json_event(protocol.error(rid, protocol.INTERNAL_ERROR, message)))
    await out.write_eof()


class _Watch:
    """One in-flight request whose client may leave: its handler task and whether it has."""

    __slots__ = ("gone", "request", "task")

    def __init__(self, request: web.Request, task: asyncio.Task[Any]) -> None:
        self.request = request
        self.task = task
        self.gone = False


class _Watcher:
    """One timer per event loop polling every watched request's transport (none while idle; cheaper
    on the hot path than a timer per request)."""

    def __init__(self) -> None:
        self.watches: set[_Watch] = set()
        self.handle: asyncio.TimerHandle | None = None

    def add(self, watch: _Watch) -> None:
        self.watches.add(watch)
        if self.handle is None:
            self.handle = asyncio.get_running_loop().call_later(DISCONNECT_POLL, self.tick)

    def tick(self) -> None:
        for watch in list(self.watches):
            transport = watch.request.transport
            if not watch.gone and (transport is None or transport.is_closing()):
                watch.gone = True
                watch.task.cancel()
        self.handle = asyncio.get_running_loop().call_later(DISCONNECT_POLL, self.tick) if self.watches else None


_watchers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watcher] = weakref.WeakKeyDictionary()


def _watcher(loop: asyncio.AbstractEventLoop) -> _Watcher:
    watcher = _watchers.get(loop)
    if watcher is None:
        watcher = _watchers[loop] = _Watcher()
    return watcher


async def until_disconnect(request: web.Request, work: Awaitable[T]) -> T:
    """Run `work`, cancelling it (and so the upstream request) if the client disconnects first.

    2026-07-28 has no cancel notification: closing the connection is how a client cancels. aiohttp's
    `handler_cancellation` would cancel REST handlers too, so the transport is polled instead.
    """
    task = asyncio.current_task()
    assert task is not None
    watcher = _watcher(task.get_loop())
    watch = _Watch(request, task)
    watcher.add(watch)
    try:
        return await work
    except asyncio.CancelledError:
        if not watch.gone:
            raise
        task.uncancel()
        raise ClientGone() from None
    finally:
        watcher.watches.discard(watch)
        if watch.gone and task.cancelling():
            # `work` swallowed our cancellation: still a disconnect, and the task is not cancelled.
            task.uncancel()
            raise ClientGone()
