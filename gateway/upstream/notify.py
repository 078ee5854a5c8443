"""Backend `notifications/resources/updated` feeds, for resource subscriptions on `/mcp`.

One `ResourceFeed` per backend with any subscribed URI keeps one long-lived stream open: on a
2025-era backend, the shared session's GET stream plus `resources/subscribe` for each URI; on a
2026-07-28 backend, a `subscriptions/listen` whose `resourceSubscriptions` lists the URIs (reopened
when the set changes: that era cannot add a URI to an open stream). A backend that re-initializes
(new session id) or drops the stream gets a new stream and every URI again. The feed stops when
no URI is wanted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable

import aiohttp

from gateway.upstream.client import MODERN, BackendClient
from gateway.upstream.errors import UpstreamError
from shared.runtime import cancel_and_wait

log = logging.getLogger(__name__)

UPDATED = "notifications/resources/updated"
ACKNOWLEDGED = "notifications/subscriptions/acknowledged"
RETRY = 0.5  # pause before reopening a stream that failed or ended by itself
CHECK = 0.25  # how often a 2025-era feed looks for a session re-initialized by other requests
_ids = itertools.count(1)


class ResourceFeed:
    """One backend's resource-update stream, following the set of URIs `want` names."""

    def __init__(self, client: BackendClient, on_update: Callable[[str, str], None]) -> None:
        self.client = client
        self.server = client.server.name
        self.on_update = on_update
        self.wanted: frozenset[str] = frozenset()
        self._gen = self._applied = 0
        self._changed = asyncio.Event()
        self._synced = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def want(self, uris: set[str]) -> int:
        """Follow exactly `uris` from now on; the generation `synced` waits for."""
        if frozenset(uris) != self.wanted:
            self.wanted = frozenset(uris)
            self._gen += 1
            self._changed.set()
        if self.wanted and (self._task is None or self._task.done()):
            self._task = asyncio.get_running_loop().create_task(self._run())
        return self._gen

    async def synced(self, gen: int, limit: float) -> None:
        """Wait until the backend follows generation `gen` (TimeoutError after `limit` seconds)."""
        async with asyncio.timeout(limit), self._synced:
            await self._synced.wait_for(lambda: self._applied >= gen)

    async def stop(self, limit: float) -> None:
        """Unsubscribe a 2025-era backend from every URI (best effort), then close."""
        gen = self.want(set())
        if self.client.era != MODERN and self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await self.synced(gen, limit)
        await self.close()

    async def close(self) -> None:
        """Stop following (the backend's session, and its subscriptions, end with it)."""
        await cancel_and_wait(self._task)
        self._task = None

    async def _mark(self, gen: int) -> None:
        async with self._synced:
            self._applied = max(self._applied, gen)
            self._synced.notify_all()

    async def _run(self) -> None:
        while self.wanted:
            ended = True
            try:
                await self.client.ensure_era()
                ended = await (self._listen() if self.client.era == MODERN else self._legacy())
            except (UpstreamError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.info("resource feed failed; reopening", extra={"server": self.server, "error": str(exc)})
            if ended:
                await asyncio.sleep(RETRY)

    async def _legacy(self) -> bool:
        session_id = self.client.session_id
        async with await self.client.open_get() as resp:
            if resp.status in (400, 404) and session_id:
                await self.client.renew_session(session_id)  # the backend forgot our session
                return False
            if resp.status != 200:
                raise UpstreamError(self.server, f"GET stream refused with HTTP {resp.status}", resp.status)
            reader = asyncio.create_task(self._read(resp, asyncio.Event()))
            applied: set[str] = set()
            try:
                while not reader.done():
                    if self.client.session_id != session_id:
                        return False  # re-initialized by another request: new stream, subscribe again
                    self._changed.clear()
                    gen, wanted = self._gen, self.wanted
                    for uri in sorted(wanted - applied):
                        await self._rpc("resources/subscribe", uri)
                        applied.add(uri)
                    for uri in sorted(applied - wanted):
                        await self._rpc("resources/unsubscribe", uri)
                        applied.discard(uri)
                    await self._mark(gen)
                    await _first(reader, self._changed, CHECK)
                return True
            finally:
                await _stop(reader)

    async def _listen(self) -> bool:
        self._changed.clear()
        gen, wanted = self._gen, self.wanted
        message = {"jsonrpc": "2.0", "id": f"mcpgw-feed-{next(_ids)}", "method": "subscriptions/listen",
                   "params": {"notifications": {"resourceSubscriptions": sorted(wanted)}}}
        async with await self.client.open_stream(message) as resp:
            if resp.status != 200 or resp.content_type != "text/event-stream":
                raise UpstreamError(self.server, f"subscriptions/listen refused with HTTP {resp.status}", resp.status)
            acked = asyncio.Event()
            reader = asyncio.create_task(self._read(resp, acked))
            try:
                await _first(reader, acked, None)
                if not reader.done():
                    await self._mark(gen)
                    await _first(reader, self._changed, None)
                return reader.done()
            finally:
                await _stop(reader)

    async def _rpc(self, method: str, uri: str) -> None:
        reply = await self.client.request(method, {"uri": uri})
        if "error" in reply.response:
            raise UpstreamError(self.server, f"{method} failed: {reply.response['error']}", reply.status)

    async def _read(self, resp: aiohttp.ClientResponse, acked: asyncio.Event) -> None:
        async for message in self.client.listened(resp):
            params = message.get("params")
            if message.get("method") == ACKNOWLEDGED:
                acked.set()
            elif message.get("method") == UPDATED and isinstance(params, dict) and isinstance(params.get("uri"), str):
                self.on_update(self.server, params["uri"])


async def _first(reader: asyncio.Task[None], event: asyncio.Event, limit: float | None) -> None:
    """Wait until the reader ends, `event` is set, or `limit` seconds pass."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({reader, waiter}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError, UpstreamError):
        await task
