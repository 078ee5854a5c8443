"""A backend's answer to one request, read from a JSON body or an SSE stream (sse.events).

The answer is the message `codec.is_response_to` names; notifications before it are kept (at most
MAX_NOTES); server→client requests on a call's stream are relayed by mcp/calls.py instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.upstream import codec, sse
from gateway.upstream.errors import UpstreamError
from gateway.upstream.sender import read_capped

# Notifications kept on a Reply (the rest are counted against the call's budget, then dropped).
MAX_NOTES = 100


@dataclass
class Reply:
    """A backend's answer: the JSON-RPC response plus notifications that came before it."""

    response: dict[str, Any]
    status: int
    notifications: list[dict[str, Any]] = field(default_factory=list)


async def read_reply(resp: aiohttp.ClientResponse, server: str, request_id: Any, *, limit: int,
                     budget: sse.Budget | None = None, idle_limit: float | None = None,
                     on_request: Callable[[dict[str, Any]], None] | None = None) -> Reply | None:
    """The reply to `request_id` in `resp`; None for a JSON body that holds none (the caller decides
    what its status means). An SSE stream without one, or malformed JSON, is an UpstreamError.
    `on_request` gets each request the backend sends on the stream (sampling, elicitation)."""
    if resp.content_type == "text/event-stream":
        notes: list[dict[str, Any]] = []
        async with contextlib.aclosing(sse.events(resp, server, limit, budget=budget, idle_limit=idle_limit)) as events:
            async for event in events:
                if event.event != "message" or not event.data:
                    continue
                message = decode(event.data, server)
                if codec.is_response_to(message, request_id):
                    await _drain(resp)
                    return Reply(message, resp.status, notes)
                if isinstance(message, dict) and "method" in message and "id" in message and on_request:
                    on_request(message)
                if isinstance(message, dict) and "method" in message and len(notes) < MAX_NOTES:
                    notes.append(message)
        raise UpstreamError(server, "event stream ended without a response", resp.status)
    if resp.content_type != "application/json":
        return None
    body = decode(await read_capped(resp, server, limit, idle_limit), server)
    return Reply(body, resp.status) if codec.is_response_to(body, request_id) else None


def answer_in(raw: bytes, content_type: str, request_id: Any = None) -> Any:
    """The JSON-RPC response (to `request_id`, or any) in a buffered JSON or SSE body; None if none."""
    if content_type != "text/event-stream":
        return codec.loads_or_none(raw)
    for event in sse.parse(raw + b"\n\n"):  # a whole body: a last event missing its blank line still counts
        message = codec.event_message(event)
        if codec.is_response_to(message, request_id):
            return message
    return None


def decode(data: str | bytes, server: str) -> Any:
    """JSON from a backend; malformed JSON is the backend's failure (502)."""
    try:
        return codec.decode(data)
    except ValueError:
        raise UpstreamError(server, "backend sent malformed JSON") from None


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read the end of an SSE stream the server closes right after the response (the usual case),
    so the keep-alive connection can be reused; a stream still open after 20 ms is just closed."""
    if resp.content.at_eof():
        return
    try:
        async with asyncio.timeout(0.02):
            await resp.content.read()
    except (TimeoutError, aiohttp.ClientError):
        pass
