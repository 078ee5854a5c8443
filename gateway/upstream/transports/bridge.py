"""The bridge: each stdio or legacy-SSE server exposed as a 2025-era Streamable HTTP endpoint.

The gateway serves `http://127.0.0.1:{port}/{secret}/{name}/mcp` from an internal aiohttp site
(random port, random path secret so no other local process can reach the servers past policy),
and the registry points every `type: stdio` / `type: sse` server's URL there. The pool, `/mcp`,
REST and passthrough then talk to them exactly as to Streamable HTTP servers (see ../README.md).

Per endpoint: `initialize` gives the caller a session (bridge_sessions.py). A stdio server's
sessions are answered from its cached handshake and multiplexed onto its one child
(`mux.Multiplexer`); a legacy SSE server's session opens a connection of its own declaring the
capabilities the caller declared (at most `sessions_per_server` such per server: later callers share
the server's one connection, which answers the server's requests itself), whose requests to the client are relayed on the caller's
running call (or its GET stream) and whose answers POSTed back go to that connection. A request
carrying a progress token (or, on an own connection, any request) is answered as an event stream
when something comes before its answer; GET streams the other notifications; DELETE ends the
caller's session (and closes its own connection).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from collections.abc import AsyncGenerator, Coroutine, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import ServerConfig
from gateway.settings import ANSWER_TIMEOUT
from gateway.settings import GatewaySettings as Defaults
from gateway.upstream import sse
from gateway.upstream.sessions import canonical_capabilities
from gateway.upstream.transports.bridge_http import event, json_response, lossy, rpc, stream, wait
from gateway.upstream.transports.bridge_sessions import BridgeCall, BridgeSession, SessionTable
from gateway.upstream.transports.legacy_sse import SseServer
from gateway.upstream.transports.mux import Multiplexer, Unavailable
from gateway.upstream.transports.stdio import StdioServer
from gateway.upstream.transports.stdio_process import StdioLimits

log = logging.getLogger(__name__)

SESSION = "Mcp-Session-Id"


def _identity(config: ServerConfig) -> tuple[Any, ...]:
    """What a running connection depends on: a change restarts it."""
    return (config.stdio, config.sse_url, config.auth, config.timeout)


class BridgeHost:
    """Every stdio and legacy-SSE server of the registry, each behind its loopback endpoint."""

    def __init__(self, limits: StdioLimits, environ: Mapping[str, str] | None = None,
                 session: aiohttp.ClientSession | None = None, *,
                 streams: aiohttp.ClientSession | None = None,
                 sessions_per_server: int = Defaults.upstream_own_connections_per_server,
                 session_idle: float = Defaults.upstream_session_idle) -> None:
        self.limits = limits
        self.session, self.streams = session, streams or session  # requests; event streams (connections.py)
        self.credentials: CredentialStore | None = None  # the registry's, set once it exists
        self.environ = os.environ if environ is None else environ
        self.secret = secrets.token_urlsafe(24)
        self.base = ""
        self.servers: dict[str, Multiplexer] = {}
        self._identities: dict[str, tuple[Any, ...]] = {}
        self._configs: dict[str, ServerConfig] = {}
        self.sessions = SessionTable(sessions_per_server, session_idle, lambda own: self._background(own.close()))
        self._opening: dict[str, int] = {}  # own connections in their handshake, per server
        self._retired: set[asyncio.Task[None]] = set()  # warm-ups and retired servers' stops
        self._warming: set[asyncio.Task[None]] = set()

    def url_for(self, name: str) -> str:
        """The loopback URL the registry gives stdio or legacy-SSE server `name`."""
        return f"{self.base}/{self.secret}/{name}/mcp"

    def sync(self, servers: Mapping[str, ServerConfig]) -> None:
        """Registry listener: stop children whose server was removed, disabled or changed; start new ones."""
        wanted = {n: s for n, s in servers.items() if (s.stdio is not None or s.sse_url) and s.enabled}
        for name, server in list(self.servers.items()):
            config = wanted.get(name)
            if config is None or _identity(config) != self._identities.get(name):
                del self.servers[name]
                self.sessions.drop_server(name)
                self._background(server.close())
        self._configs = wanted
        for name in wanted:
            if name not in self.servers:
                self._warming.add(self._background(self._warm(name)))

    async def _warm(self, name: str) -> None:
        """Start a server before its first call, so a broken command shows in the log at once."""
        server = self.server(name)
        if server is not None:
            try:
                await server.handshake()
            except Unavailable as exc:
                log.error("bridged server did not start: %s", exc.message, extra={"server": name})
            if isinstance(server, SseServer):
                await server.disconnect()  # checked; each session opens a connection of its own

    def _background(self, job: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(job)
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)
        task.add_done_callback(self._warming.discard)
        return task

    def server(self, name: str) -> Multiplexer | None:
        """The supervised connection to bridged server `name` (created on first use)."""
        existing = self.servers.get(name)
        if existing is not None:
            return existing
        config = self._configs.get(name)
        created: Multiplexer
        if config is not None and config.stdio is not None:
            created = StdioServer(name, config.stdio, self.limits, self.environ, self.credentials)
        elif config is not None and config.sse_url and self.session is not None:
            created = SseServer(config, self.limits, self.session, self.credentials, streams=self.streams)
        else:
            return None
        self.servers[name] = created
        self._identities[name] = _identity(config)
        return created

    async def settled(self) -> None:
        """Wait until background starts and stops (of edited or removed servers) have finished."""
        await asyncio.gather(*self._retired, return_exceptions=True)

    async def close(self) -> None:
        """Stop every child (SIGTERM, then SIGKILL after the grace period)."""
        self._configs = {}
        self.sessions.clear()
        for task in self._warming:
            task.cancel()  # a server hanging in its start must not hold the shutdown
        servers, self.servers = list(self.servers.values()), {}
        await asyncio.gather(*(s.close() for s in servers), *self._retired, return_exceptions=True)

    def app(self) -> web.Application:
        """The internal application (served on 127.0.0.1 only)."""
        app = web.Application(client_max_size=self.limits.max_message_bytes)
        path = f"/{self.secret}/{{name}}/mcp"
        app.router.add_post(path, self.post)
        app.router.add_get(path, self.get)
        app.router.add_delete(path, self.delete)
        return app

    # -- handlers ------------------------------------------------------------------------------

    async def post(self, request: web.Request) -> web.StreamResponse:
        """One JSON-RPC message from a gateway caller."""
        server = self.server(request.match_info["name"])
        if server is None:
            return json_response(rpc(None, -32600, "unknown bridged server"), 404)
        try:
            message = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return json_response(rpc(None, -32700, "Parse error"), 400)
        if not isinstance(message, dict):
            return json_response(rpc(None, -32600, "one JSON-RPC message per request"), 400)
        method, rid = message.get("method"), message.get("id")
        try:
            if method == "initialize":
                return await self._initialize(server, message)
            session = self._session(request)
            if session is None:
                status, text = (404, "Session not found") if request.headers.get(SESSION) else (
                    400, "Bad Request: Mcp-Session-Id header is required")
                return json_response(rpc(None, -32000, text), status)
            mux = session.own or server
            if method is None:  # an answer to a request relayed to the caller; others we answered ourselves
                if session.own is not None:
                    await session.own.notify(message)
                return web.Response(status=202)
            if "id" not in message:
                await self._notification(mux, session, message)
                return web.Response(status=202)
            if method == "ping":
                return json_response({"jsonrpc": "2.0", "id": rid, "result": {}})
            return await self._request(request, mux, session, message)
        except Unavailable as exc:
            return json_response(rpc(rid, -32000, exc.message), exc.status)

    async def _initialize(self, server: Multiplexer, message: dict[str, Any]) -> web.Response:
        params = message.get("params")
        declared = canonical_capabilities(params.get("capabilities") if isinstance(params, dict) else None)
        # Own connections are capped per server (their event streams hold a connection each of the
        # streams' pool): past the cap, or with no stream connection free, a caller shares the server's one.
        opening = self._opening.get(server.name, 0)
        own: Multiplexer | None = None
        result: dict[str, Any] | None = None
        mine = server.for_caller(orjson.loads(declared)) if self.sessions.own(server.name) + opening < \
            self.sessions.per_server else None
        if mine is not None:
            self._opening[server.name] = opening + 1
            try:
                result, own = await mine.handshake(), mine
            except BaseException as exc:
                await mine.close()  # a new connection is never crash-looping: its 503 is errors.StreamsExhausted
                if not isinstance(exc, Unavailable) or exc.status != 503:
                    raise
            finally:
                self._opening[server.name] -= 1
        if own is None:
            result = await server.handshake()
        session = self.sessions.add(server.name, own)
        body = {"jsonrpc": "2.0", "id": message.get("id"), "result": result}
        return json_response(body, headers={SESSION: session})

    def _session(self, request: web.Request) -> BridgeSession | None:
        session = self.sessions.get(request.headers.get(SESSION))
        return session if session is not None and session.server == request.match_info["name"] else None

    async def _notification(self, server: Multiplexer, session: BridgeSession, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method == "notifications/initialized":
            return  # the child's own session was initialized once, by us
        if method == "notifications/cancelled":
            params = message.get("params")
            call = session.calls.get(params.get("requestId")) if isinstance(params, dict) else None
            if call is not None:
                call.task.cancel()  # Multiplexer.request relays the cancellation with the child's id
            return
        await server.notify(message)

    async def _request(self, request: web.Request, server: Multiplexer, session: BridgeSession,
                       message: dict[str, Any]) -> web.StreamResponse:
        rid = message.get("id")
        meta = (message.get("params") or {}).get("_meta") if isinstance(message.get("params"), dict) else None
        progress = isinstance(meta, dict) and "progressToken" in meta
        notes: asyncio.Queue[dict[str, Any]] | None = None
        if progress or session.own is not None:  # an own connection's requests to the client come here too
            notes = asyncio.Queue(maxsize=1000)
        task = asyncio.create_task(server.request(message, lossy(notes) if notes and progress else None))
        # The gateway's client gives up after the server's timeout; a moment later the call is
        # cancelled here too (and in the server), so a server that never answers leaks nothing.
        # Once the server's request is relayed to the agent, the agent's answer time is the limit.
        config = self._configs.get(request.match_info["name"])
        limit, loop = (config.timeout if config else 30.0), asyncio.get_running_loop()
        timer = loop.call_later(limit + 1.0, task.cancel)

        def asked() -> None:
            nonlocal timer
            timer.cancel()
            timer = loop.call_later(max(limit, ANSWER_TIMEOUT) + 1.0, task.cancel)

        calls = session.calls
        calls[rid] = BridgeCall(task, notes, asked)
        try:
            if notes is None:
                return json_response(await wait(task, rid))
            return await stream(request, task, rid, notes)
        finally:
            timer.cancel()
            calls.pop(rid, None)
            task.cancel()

    async def get(self, request: web.Request) -> web.StreamResponse:
        """The caller's GET stream: the child's notifications that belong to no request."""
        server = self.server(request.match_info["name"])
        session = self._session(request)
        if server is None or session is None:
            return json_response(rpc(None, -32000, "Session not found"), 404)
        server = session.own or server
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        offer = lossy(queue)
        resp = web.StreamResponse(headers=sse.SSE_HEADERS)
        await resp.prepare(request)
        server.listeners.add(offer)
        try:
            while True:
                await resp.write(event(await queue.get()))
        finally:
            server.listeners.discard(offer)

    async def delete(self, request: web.Request) -> web.Response:
        """End the caller's session (the child's own session lives on)."""
        if self._session(request) is None:
            return web.Response(status=404)
        self.sessions.pop(request.headers.get(SESSION))
        return web.Response(status=200)


async def bridge_site(host: BridgeHost) -> AsyncGenerator[None, None]:
    """Serve `host` on 127.0.0.1 (random port) until the generator is closed; stop every child."""
    # A short shutdown timeout: open GET streams must not hold the gateway's stop for a minute.
    runner = web.AppRunner(host.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    host.base = f"http://127.0.0.1:{port}"
    try:
        yield
    finally:
        await host.close()
        await runner.cleanup()
