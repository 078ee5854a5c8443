"""A 2025-era backend session's GET stream, open while a call on that session can be asked something.

A backend sends a server→client request that is not tied to one of our requests (TypeScript SDK
`server.listRoots()` / `server.createMessage()`, Python SDK `create_message` without a related
request id) on the session's standalone GET stream, never on a POST's answer: nobody listening
there means the backend waits for its own timeout. `GetStreams` opens that stream for a per-caller
backend session when the first call that may be asked starts (before its POST goes out, so nothing
sent meanwhile is lost), hands every request arriving there to the oldest call still attached,
and closes it when the last call ends. One stream per backend session (the TypeScript SDK answers
a second one with 409), at most `per_backend` at once per backend (each holds a connection of the
streams' pool: connections.py); a call finding none free goes without. A backend refusing GET (405) is not asked again
until its configuration changes. A `*/list_changed` arriving there is heard as in any other
answer (sse.hear).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from gateway.upstream.client import LEGACY, BackendClient
from gateway.upstream.errors import UpstreamError
from shared.runtime import cancel_and_wait

log = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], Awaitable[None]]
RETRY = 0.5  # pause before reopening a stream that ended while calls still wait on it
CONFLICT_RETRIES = 3  # 409: the backend has not yet seen the previous stream of the session close


class _Listener:
    __slots__ = ("client", "sinks", "ready", "task")

    def __init__(self, client: BackendClient) -> None:
        self.client = client
        self.sinks: list[Sink] = []
        self.ready = asyncio.Event()
        self.task: asyncio.Task[None] | None = None


class GetStreams:
    """Standalone GET streams of per-caller backend sessions, open while calls need them."""

    def __init__(self, per_backend: int = 16) -> None:
        self.per_backend = per_backend
        self._open: dict[BackendClient, _Listener] = {}
        self._refused: dict[str, Any] = {}  # backend name -> the configuration that answered 405
        self._closing: set[asyncio.Task[None]] = set()  # cancelled, still unwinding

    def __len__(self) -> int:
        return len(self._open)

    @contextlib.asynccontextmanager
    async def during(self, client: BackendClient, sink: Sink) -> AsyncIterator[None]:
        """Listen on `client`'s GET stream (opened and ready before this yields, up to the backend's
        `timeout`), handing server→client requests to `sink` while no older call is attached."""
        listener = self._attach(client, sink)
        try:
            if listener is not None:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(client.server.timeout):
                        await listener.ready.wait()
            yield
        finally:
            if listener is not None:
                self._detach(listener, sink)

    async def close(self) -> None:
        """Stop every stream (shutdown)."""
        listeners, self._open = list(self._open.values()), {}
        for listener in listeners:
            listener.sinks.clear()
            await cancel_and_wait(listener.task)
        for task in list(self._closing):
            await cancel_and_wait(task)

    def _attach(self, client: BackendClient, sink: Sink) -> _Listener | None:
        if client.era != LEGACY or not client.session_id:
            return None
        if self._refused.get(client.server.name) == client.server:
            return None
        listener = self._open.get(client)
        if listener is None:
            name = client.server.name
            if sum(1 for other in self._open if other.server.name == name) >= self.per_backend:
                return None
            listener = self._open[client] = _Listener(client)
            listener.task = asyncio.get_running_loop().create_task(self._run(listener))
        listener.sinks.append(sink)
        return listener

    def _detach(self, listener: _Listener, sink: Sink) -> None:
        listener.sinks.remove(sink)
        if listener.sinks:
            return
        if self._open.get(listener.client) is listener:
            del self._open[listener.client]
        if listener.task is not None:  # not awaited: the call leaving may itself be cancelled
            listener.task.cancel()
            self._closing.add(listener.task)
            listener.task.add_done_callback(self._closing.discard)

    async def _run(self, listener: _Listener) -> None:
        client = listener.client
        conflicts = failures = 0
        try:
            while listener.sinks and client.era == LEGACY and client.session_id:
                try:
                    async with await client.open_get() as resp:
                        if resp.status == 405:
                            self._refused[client.server.name] = client.server
                            return
                        if resp.status == 409 and conflicts < CONFLICT_RETRIES:
                            conflicts += 1
                            await asyncio.sleep(0.05 * conflicts)
                            continue
                        if resp.status != 200 or resp.content_type != "text/event-stream":
                            raise UpstreamError(client.server.name, f"GET stream refused with HTTP {resp.status}",
                                                resp.status)
                        listener.ready.set()
                        await self._read(listener, resp)
                except (UpstreamError, aiohttp.ClientError, TimeoutError) as exc:
                    failures += 1  # logged once per listener: a long call must not repeat it every RETRY
                    log.log(logging.INFO if failures == 1 else logging.DEBUG, "backend GET stream failed",
                            extra={"server": client.server.name, "error": str(exc)})
                listener.ready.set()  # a call never waits on a stream that cannot open
                await asyncio.sleep(RETRY)
        finally:
            listener.ready.set()

    async def _read(self, listener: _Listener, resp: aiohttp.ClientResponse) -> None:
        client = listener.client
        async for message in client.listened(resp):
            if isinstance(message.get("method"), str) and "id" in message:
                await self._deliver(listener, message)

    async def _deliver(self, listener: _Listener, message: dict[str, Any]) -> None:
        """Hand a request to the oldest attached call; with none left, refuse it at once."""
        if listener.sinks:
            await listener.sinks[0](message)
            return
        error = {"jsonrpc": "2.0", "id": message["id"],
                 "error": {"code": -32603, "message": "no client call is waiting for this request"}}
        with contextlib.suppress(UpstreamError, aiohttp.ClientError, TimeoutError):
            await listener.client.send_response(error)
