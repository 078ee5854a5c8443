"""`UpstreamPool`: `BackendClient`s per backend over the shared, pooled ClientSessions (connections.py):
requests on one, long-lived streams (GET streams, `subscriptions/listen`) on another.

Requests made for an agent name a `Caller`: on a 2025-era backend each caller has its own
backend session (sessions.py); on a 2026-07-28 backend, and for the gateway's own requests
(catalogs, tool-name checks), every request shares the backend's one client — but a 2025-era
agent the backend may ask mid-call (`Caller.asks`) gets a 2025-era session of its own there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from gateway.credentials import CredentialStore
from gateway.masking import masked_response
from gateway.settings import MAX_CALL_BYTES, MAX_RESPONSE_BYTES
from gateway.settings import GatewaySettings as Defaults
from gateway.upstream import codec
from gateway.upstream.client import MODERN, BackendClient
from gateway.upstream.errors import UpstreamError, UpstreamRpcError
from gateway.upstream.fairness import SubjectLanes
from gateway.upstream.sender import Reply, drain_background
from gateway.upstream.sessions import Caller, SubjectSessions
from gateway.upstream.standalone import GetStreams
from gateway.upstream.toolcache import ToolNames

if TYPE_CHECKING:
    from gateway.registry import Registry, ServerConfig

log = logging.getLogger(__name__)

LIST_METHODS = frozenset(codec.LIST_KEYS)
# (server, list method, result) -> the result with items the gateway cannot represent left out
ListFilter = Callable[[str, str, Mapping[str, Any]], dict[str, Any]]
# (server, list method, items read, why) of a listing left out whole for its size (every_page)
ListOversized = Callable[[str, str, int, str], None]


class UpstreamPool:
    """MCP clients for every backend; eras and sessions are remembered per backend."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        credentials: CredentialStore,
        registry: Registry | None = None,
        *,
        tools_ttl: float = Defaults.tools_cache_ttl,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        list_filter: ListFilter | None = None,
        max_call_bytes: int = MAX_CALL_BYTES,
        sessions_per_backend: int = Defaults.upstream_sessions_per_backend,
        session_idle: float = Defaults.upstream_session_idle,
        subject_concurrency: int = Defaults.upstream_subject_concurrency,
        subject_queue: int = Defaults.upstream_subject_queue,
        streams: aiohttp.ClientSession | None = None,
        max_list_items: int | None = None,
        list_oversized: ListOversized | None = None,
    ) -> None:
        self.session = session
        self.streams = streams or session  # long-lived streams' own pool (connections.py), else the one
        self.list_filter = list_filter
        self.max_list_items, self.list_oversized = max_list_items, list_oversized
        self.max_response_bytes = max_response_bytes
        self.max_call_bytes = max_call_bytes
        self.credentials = credentials
        self.registry = registry
        self._clients: dict[str, BackendClient] = {}
        self.subjects = SubjectSessions(self._subject_client, sessions_per_backend, session_idle)
        self.lanes = SubjectLanes(subject_concurrency, subject_queue)
        # backend name -> what to tell when it announces a list change (changes.follow, while followed)
        self.announced: dict[str, Callable[[], None]] = {}
        self.get_streams = GetStreams()  # per-caller sessions' GET streams while calls need them
        self.tool_names = ToolNames(tools_ttl)
        # tools/list in flight per (catalog key, epoch): one begun before the backend announced a
        # change is not joined (nor stored) by later calls (toolcache.ToolNames.epoch)
        self._listing: dict[tuple[str, int], asyncio.Task[list[dict[str, Any]]]] = {}

    async def close(self) -> None:
        """Stop tool listings still in flight; end the per-caller backend sessions (best effort)."""
        tasks = list(self._listing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.get_streams.close()
        for client in self.subjects.clear():
            client.end_soon()
        await drain_background()

    def heard(self, server: str) -> None:
        """A backend announced a list change in any of its answers (sse.hear): its tool names are
        listed again before the next call, and its catalog re-read (while it is followed)."""
        self.tool_names.forget(server)
        poke = self.announced.get(server)
        if poke is not None:
            poke()

    def _generation(self) -> int:
        return self.registry.generation if self.registry is not None else 0

    async def catalog(
        self, server: ServerConfig | str, caller: Caller | None = None
    ) -> Mapping[str, Mapping[str, Any]]:
        """{name: tool} of `server`: the cached tools/list while fresh, else listed now.

        One listing is in flight per backend however many calls wait for it; a failure raises
        (the caller refuses the call: a tool that cannot be looked up is never forwarded). A
        2025-era backend may offer some tools only to clients that declared a capability
        (server-everything's sampling, elicitation and roots tools): a `caller` declaring any gets
        the catalog its own session lists, kept per set of declared names (at most 8 per backend).
        """
        config = self._config(server)
        if caller is not None and (caller.capabilities == "{}" or self._shared(config).era == MODERN):
            caller = None
        key = config.name if caller is None else f"{config.name}\x00{','.join(sorted(caller.declared()))}"
        found = self.tool_names.tools(key, self._generation())
        if found is not None:
            return found
        listing = (key, self.tool_names.epoch(key))
        pending = self._listing.get(listing)
        if pending is None:
            pending = asyncio.get_running_loop().create_task(self.list_tools(config, caller, key))
            self._listing[listing] = pending
            pending.add_done_callback(functools.partial(self._listed, listing))
        tools = await asyncio.shield(pending)
        return {t["name"]: t for t in tools if isinstance(t.get("name"), str)}

    def cached_catalog(self, server: str) -> Mapping[str, Mapping[str, Any]] | None:
        """{name: tool} of `server` while its shared catalog is fresh, else None (no backend call)."""
        return self.tool_names.tools(server, self._generation())

    def _listed(self, listing: tuple[str, int], task: asyncio.Task[list[dict[str, Any]]]) -> None:
        if self._listing.get(listing) is task:
            del self._listing[listing]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited any more must not warn

    def remember_tools(self, server: str, tools: Sequence[Mapping[str, Any]], epoch: int) -> None:
        """Store a complete tools/list answer fetched elsewhere (the /mcp list cache), begun at `epoch`."""
        self.tool_names.store(server, self._generation(), tools, epoch)

    def _config(self, server: ServerConfig | str) -> ServerConfig:
        if not isinstance(server, str):
            return server
        config = self.registry.get(server) if self.registry is not None else None
        if config is None:
            raise UpstreamError(server, "no such enabled backend")
        return config

    def client(self, server: ServerConfig | str, caller: Caller | None = None) -> BackendClient:
        """The client for `server` (`caller`'s own on a 2025-era backend), rebuilt when its
        configuration changed on reload."""
        base = self._shared(server)
        if caller is None or (base.era == MODERN and not caller.asks):
            return base
        return self.subjects.get(base.server, caller)

    def _subject_client(self, config: ServerConfig, caller: Caller) -> BackendClient:
        if caller.asks:  # the handshake era whatever the backend prefers; its siblings learn nothing from it
            return self.new_client(config, capabilities=caller.declared(), handshake=True)
        base = self._shared(config)
        return self.new_client(config, capabilities=caller.declared(), era_hint=base.era or base.era_hint, on_era=base.adopt_era)

    def new_client(self, config: ServerConfig, **options: Any) -> BackendClient:
        """A client of its own for `config` (`options`: BackendClient's), with the pool's session and limits."""
        return BackendClient(config, self.session, self.credentials, streams=self.streams,
                             max_response_bytes=self.max_response_bytes, max_call_bytes=self.max_call_bytes,
                             ear=functools.partial(self.heard, config.name), **options)

    def _shared(self, server: ServerConfig | str) -> BackendClient:
        config = self._config(server)
        client = self._clients.get(config.name)
        # Identity first: comparing whole configs on every call showed in the hot-path profile.
        if client is None or (client.server is not config and client.server != config):
            client = self._clients[config.name] = self.new_client(config)
        return client

    def era(self, server: ServerConfig | str) -> str | None:
        """The detected era ("2026-07-28" or "legacy"), None before the first request."""
        return self.client(server).era

    async def exchange(
        self, server: ServerConfig | str, method: str, params: dict[str, Any] | None = None,
        caller: Caller | None = None,
    ) -> Reply:
        """Send a request (for `caller`, or the gateway's own); return the full reply."""
        async with self.turn(server, caller):
            client = self.client(server, caller)
            reply = await client.request(method, params)
        if "result" in reply.response:
            result = codec.normalise_result(reply.response["result"])
            if self.list_filter is not None and method in LIST_METHODS and isinstance(result, dict):
                # Every list a backend gives the gateway passes here: /mcp, REST, the CLI.
                result = self.list_filter(client.server.name, method, result)
            reply.response = {**reply.response, "result": result}
        # What the backend said, with its own credential masked (REST, /mcp prompts and broadcasts, bridged passthrough).
        reply.response = masked_response(reply.response, self.credentials.forms(client.server))
        return reply

    @contextlib.asynccontextmanager
    async def turn(self, server: ServerConfig | str, caller: Caller | None) -> AsyncIterator[None]:
        """Hold one of `caller`'s slots on `server` (fairness.py); the gateway's own requests need none."""
        if caller is None:
            yield
            return
        config = self._config(server)
        async with self.lanes.turn(config.name, caller.subject, config.timeout):
            with self.subjects.hold(config.name, caller):  # its session is not ended mid-request
                yield

    async def request(
        self, server: ServerConfig | str, method: str, params: dict[str, Any] | None = None,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        """Send a request; return the JSON-RPC response dict (result or error)."""
        return (await self.exchange(server, method, params, caller)).response

    async def _result(
        self, server: ServerConfig | str, method: str, params: dict[str, Any] | None,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        config = self._config(server)
        reply = await self.exchange(config, method, params, caller)
        if "error" in reply.response:
            error = reply.response["error"]
            raise UpstreamRpcError(config.name, error if isinstance(error, dict) else {},
                                   self.credentials.forms(config), reply.status)
        result = reply.response.get("result")
        if not isinstance(result, dict):
            raise UpstreamError(config.name, f"{method} returned no result object", reply.status)
        if result.get("resultType", "complete") != "complete":
            # input_required needs the agent to answer the backend; this client API cannot relay that.
            raise UpstreamError(config.name, f"{method} asked for client input ({result['resultType']})")
        return result

    async def list_tools(
        self, server: ServerConfig | str, caller: Caller | None = None, key: str | None = None
    ) -> list[dict[str, Any]]:
        """Every tool of `server` (in `caller`'s session), following cursors; remembered under `key`."""
        config, generation = self._config(server), self._generation()
        key = key or config.name
        epoch = self.tool_names.epoch(key)  # a change announced while listing: this list is not kept
        tools = await self.every_page(config.name, "tools/list",
                                      lambda params: self._result(config, "tools/list", params, caller))
        self.tool_names.store(key, generation, tools, epoch)
        return tools

    async def every_page(self, server: str, method: str, page: Callable[[dict[str, Any] | None], Any],
                         ) -> list[dict[str, Any]]:
        """codec.every_page with one listing's limits (the call budget, `max_list_items`): a listing
        past them is left out (empty: nothing of it kept or offered) and reported to `list_oversized`."""
        try:
            return await codec.every_page(server, method, page, max_items=self.max_list_items,
                                          max_bytes=self.max_call_bytes)
        except codec.ListTooLarge as exc:
            if self.list_oversized is not None:
                self.list_oversized(server, method, exc.items, exc.message)
            return []

    async def call_tool(
        self, server: ServerConfig | str, name: str, arguments: Mapping[str, Any] | None = None,
        caller: Caller | None = None,
    ) -> dict[str, Any]:
        """Call a tool; return the CallToolResult dict (`content`, `structuredContent`, `isError`)."""
        return await self._result(server, "tools/call", {"name": name, "arguments": dict(arguments or {})}, caller)

    async def send(self, server: ServerConfig | str, method: str, headers: dict[str, str],
                   message: dict[str, Any] | None = None, *, stream: bool = False) -> aiohttp.ClientResponse:
        """Passthrough's request to `server` as the agent framed it, on the one request path (sender.py);
        the caller reads and releases the response."""
        return await self._shared(server).http.send(method, headers, message, stream=stream)

    async def open_stream(
        self,
        server: ServerConfig | str,
        message: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        caller: Caller | None = None,
    ) -> aiohttp.ClientResponse:
        """POST a JSON-RPC request and return the unread response for passthrough (release it)."""
        return await self.client(server, caller).open_stream(message, headers)
