"""A backend's own list-change announcements, followed while `/mcp` change streams are open.

The shared poller (gateway/mcp/listen.py) reads every backend's lists on a timer; `follow`
lets a backend that announces a change (`notifications/{tools,prompts,resources}/list_changed`)
have its lists read at once. On a 2026-07-28 backend it is a `subscriptions/listen` asking for the
three list changes (the backend acknowledges those it offers); on a 2025-era backend, the GET
stream of a session of the follower's own (a backend allows one GET stream per session, and the
shared session's may be the resource feed's: notify.py), ended with the follower. A backend that
refuses (405 to GET, an error or a JSON answer to listen: FastMCP 4 answers −32601) is not
followed: the poll still finds its changes. A stream that fails or ends is reopened after a pause
that doubles up to MAX_PAUSE (back to PAUSE once a stream was open). A stream that opens (2025: its
200; 2026-07-28: the acknowledgement) pokes too: what changed while none was open is read then.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp

from gateway.upstream.client import LEGACY, MODERN, BackendClient
from gateway.upstream.errors import UpstreamError
from gateway.upstream.transports.channel import answer_server_request

if TYPE_CHECKING:
    from gateway.registry import ServerConfig
    from gateway.upstream.pool import UpstreamPool

log = logging.getLogger(__name__)

ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
FILTER = {"toolsListChanged": True, "promptsListChanged": True, "resourcesListChanged": True}
PAUSE, MAX_PAUSE = 0.5, 30.0
_ids = itertools.count(1)


async def follow(pool: UpstreamPool, server: ServerConfig, poke: Callable[[], None]) -> None:
    """Call `poke()` whenever `server` announces a list change, until cancelled or refused (also
    when an agent's backend session hears one: `pool.announced`)."""
    pool.announced[server.name] = poke
    shared = pool.client(server)
    own: BackendClient | None = None
    pause = PAUSE
    try:
        while True:
            try:
                await shared.ensure_era()
                if shared.era == MODERN:
                    opened = await _listen(shared, poke)
                else:
                    if own is None:
                        own = pool.new_client(server, era_hint=LEGACY)
                    opened = await _get(own, poke)
                if opened is None:
                    log.info("backend announces no list changes; polled only", extra={"server": server.name})
                    return
                pause = PAUSE
            except (UpstreamError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.debug("list-change stream failed", extra={"server": server.name, "error": str(exc)})
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_PAUSE)
    finally:
        if pool.announced.get(server.name) is poke:
            del pool.announced[server.name]
        if own is not None:
            own.end_soon()


async def _listen(client: BackendClient, poke: Callable[[], None]) -> bool | None:
    """One `subscriptions/listen` stream read to its end; None if the backend refused it."""
    message = {"jsonrpc": "2.0", "id": f"mcpgw-changes-{next(_ids)}", "method": "subscriptions/listen",
               "params": {"notifications": dict(FILTER)}}
    try:
        resp = await client.open_stream(message)
    except UpstreamError as exc:
        if exc.status is not None and 400 <= exc.status < 500:
            return None
        raise
    async with resp:
        if resp.content_type != "text/event-stream":
            if resp.status >= 500:
                raise UpstreamError(client.server.name, f"subscriptions/listen failed with HTTP {resp.status}",
                                    resp.status)
            return None
        await _read(client, resp, poke)
    return True


async def _get(client: BackendClient, poke: Callable[[], None]) -> bool | None:
    """The own session's GET stream read to its end; None if the backend offers none (405)."""
    await client.ensure_era()
    session_id = client.session_id
    async with await client.open_get() as resp:
        if resp.status == 405:
            return None
        if resp.status in (400, 404) and session_id:
            await client.renew_session(session_id)  # the backend forgot the session: a new one, a new stream
            return True
        if resp.status != 200 or resp.content_type != "text/event-stream":
            raise UpstreamError(client.server.name, f"GET stream refused with HTTP {resp.status}", resp.status)
        poke()
        await _read(client, resp, poke)
    return True


async def _read(client: BackendClient, resp: aiohttp.ClientResponse, poke: Callable[[], None]) -> None:
    async for message in client.listened(resp):
        method = message.get("method")
        if method == ACKNOWLEDGED:  # a list change itself is heard by every reader (sse.hear): pool.heard pokes
            poke()
        elif isinstance(method, str) and "id" in message:  # nobody here to ask: answered at once
            await client.send_response(answer_server_request(message))
