"""Resource subscriptions and watching streams on `/mcp`: `resources/subscribe` (2025 era), a
2026-07-28 `subscriptions/listen`, a session's GET stream; policy first (like resources/read).
Streams compare the caller's view of the shared poller's lists (listen.py), filtered once
per subject and catalog generation."""

from __future__ import annotations

import functools
import uuid
from typing import Any

from aiohttp import web

from gateway.keys import MCP_STATE, SERVERS, UPSTREAM
from gateway.mcp import (
    catalog,
    endpoint,
    enforce,
    fanout,
    listen,
    methods,
    protocol,
    uris,
)
from gateway.mcp.aggregated_items import locate_resource, located, permitted, servers_of
from gateway.mcp.endpoint import principal
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.mcp.subscriptions import Subscriber, updated
from gateway.registry import ServerConfig
from gateway.upstream import changes, sse
from gateway.upstream.client import LEGACY


async def _follow(request: web.Request, state: McpState, key: Subscriber, server: ServerConfig, uris: list[str],
                  expires: float = float("inf")) -> None:
    client = request.app[UPSTREAM].client(server)
    await client.ensure_era()
    caps = (client.server_info.get("capabilities") or {}).get("resources") or {}
    if client.era == LEGACY and not caps.get("subscribe"):
        raise RpcFailure(protocol.METHOD_NOT_FOUND, f"server {server.name} does not offer resource subscriptions",
                         status=200)
    try:
        await state.hub.subscribe(key, client, uris, expires)
    except TimeoutError:
        for uri in uris:
            await state.hub.unsubscribe(key, server.name, uri)
        raise RpcFailure(protocol.INTERNAL_ERROR, f"server {server.name} did not confirm the subscription",
                         status=200) from None


async def subscribe(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> dict[str, Any]:
    """`resources/subscribe` / `unsubscribe`, bound to the caller's 2025-era session on this replica."""
    if era != "handshake":  # 2026-07-28 subscribes through subscriptions/listen
        raise RpcFailure(protocol.METHOD_NOT_FOUND, f"Method not found: {msg.method}")
    uri = methods.target(msg.params, "uri")
    session = endpoint.open_session(request, state, None)
    # A server that does not exist answers as one the caller may not see (docs/security/edge.md):
    # subscribe is decided on the name spelled, unsubscribe is the no-op it is for a stranger (and for
    # a URI not in normal form, which no subscription holds).
    found = catalog.unwrap_uri(uri, servers_of(request))
    if msg.method == "resources/unsubscribe" and catalog.split_uri(uri) \
            and (found is None or uris.refusal(found[1]) is not None):
        return {}
    await located(request, state, "resources/read", uri)
    server, original = locate_resource(request, uri)
    key = (principal(request).subject, session.sid)
    if msg.method == "resources/unsubscribe":
        await state.hub.unsubscribe(key, server.name, original)
        return {}
    await enforce.decide(request, "resources/read", server.name, original)
    await _follow(request, state, key, server, [original], session.issued_at + state.codec.max_age)
    return {}


async def listen_resources(request: web.Request, state: McpState, wanted: Any) -> tuple[Subscriber, list[str]]:
    """Subscribe a new listen stream to the permitted URIs of `wanted`; the key and the honoured URIs."""
    key = (principal(request).subject, f"listen:{uuid.uuid4().hex}")
    located: list[tuple[str, ServerConfig, str]] = []
    for uri in wanted if isinstance(wanted, list) else []:
        if not isinstance(uri, str):
            continue
        try:
            located.append((uri, *locate_resource(request, uri)))
        except RpcFailure:
            continue  # not a resource of a backend the caller may reach: left out of the ack
    # Every URI decided in one PDP request; a denied one is left out of the ack.
    allowed = await enforce.readable(request, [(uri, server.name, original) for uri, server, original in located])
    by_server: dict[str, tuple[ServerConfig, list[str]]] = {}
    honoured: list[str] = []
    for (uri, server, original), ok in zip(located, allowed, strict=True):
        if ok:
            by_server.setdefault(server.name, (server, []))[1].append(original)
            honoured.append(uri)
    try:
        for server, uris in by_server.values():
            await _follow(request, state, key, server, uris)
    except BaseException:
        await state.hub.drop(key)
        raise
    return key, honoured


async def listen_stream(request: web.Request, state: McpState, msg: protocol.Message) -> web.StreamResponse:
    """`subscriptions/listen`: acknowledge what is honoured (list changes, permitted resource URIs), then watch."""
    raw = msg.params.get("notifications")
    wanted = raw if isinstance(raw, dict) else {}
    honoured: dict[str, Any] = listen.honoured(wanted)
    key, uris = await listen_resources(request, state, wanted.get("resourceSubscriptions"))
    if uris:
        honoured["resourceSubscriptions"] = uris
    ack = listen.notification("notifications/subscriptions/acknowledged", msg.id, notifications=honoured)
    try:
        return await stream(request, state, [ack], msg.id, listen.kinds_of(honoured), key, None)
    finally:
        await state.hub.drop(key)  # a listen subscription lives as long as its stream


async def stream(request: web.Request, state: McpState, first: list[dict[str, Any]], subscription: protocol.RequestId,
                 kinds: set[str], key: tuple[str, str], session: str | None) -> web.StreamResponse:
    """A watching SSE stream: `first` messages, then list changes of `kinds` and `key`'s resource updates."""
    out = web.StreamResponse(headers=sse.SSE_HEADERS)
    gauge = state.metrics.streams_open.labels("aggregated")
    with endpoint.stream_slot(state, key[0], session):
        queue = state.hub.attach(key)

        def drain() -> bytes:  # the resource updates queued since the last tick, as SSE
            return b"".join(sse.json_event(updated(*queue.get_nowait(), subscription)) for _ in range(queue.qsize()))

        gauge.inc()
        try:
            await out.prepare(request)
            for message in first:
                await out.write(sse.json_event(message))
            async with state.catalogs.subscribed():
                await listen.watch(request, out, lambda: watched_snapshot(request, state, kinds), subscription,
                                   drain, state.catalogs.stamp)
        except ConnectionResetError:
            pass  # the client closed the stream
        finally:
            state.hub.detach(key, queue)
            gauge.dec()
    return out


# notification -> the list methods whose merged, policy-filtered contents it reports on.
_SOURCES = {
    listen.TOOLS: ("tools/list",),
    listen.PROMPTS: ("prompts/list",),
    listen.RESOURCES: ("resources/list", "resources/templates/list"),
}
async def visible(request: web.Request, state: McpState, method: str) -> list[dict[str, Any]]:
    """One list method's merged catalog as the caller may see it, from the shared lists."""
    enabled = servers_of(request)
    per_server = {s: items for s, items in state.catalogs.lists.get(method, {}).items() if s in enabled}
    return (await permitted(request, state, method, per_server))[0]


async def watched_snapshot(request: web.Request, state: McpState, kinds: set[str]) -> dict[str, str]:
    """Every watched kind's digest (templates and resources together for resources/list_changed),
    computed once per subject, kinds and catalog stamp however many of its streams ask."""
    async def compute() -> dict[str, str]:
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in sorted(kinds):
            items: list[dict[str, Any]] = []
            for method in _SOURCES[kind]:
                items.extend({"list": method, **item} for item in await visible(request, state, method))
            out[kind] = items
        return {kind: listen.fingerprint(items) for kind, items in out.items()}

    key = (principal(request).subject, tuple(sorted(kinds)), state.catalogs.stamp())
    result: dict[str, str] = await state.catalogs.view(key, compute)
    return result


async def catalogs_ctx(app: web.Application) -> Any:
    """Cleanup ctx: bind the shared catalog poller to the backends; stop it on shutdown."""
    pool, registry, state = app[UPSTREAM], app[SERVERS], app[MCP_STATE]
    poller = state.catalogs

    async def info(server: ServerConfig) -> dict[str, Any]:
        client = pool.client(server)
        await client.ensure_era()
        return client.server_info

    # A changed catalog empties the /mcp list cache: an agent re-listing on list_changed gets the new list.
    poller.bind(lambda server, method: fanout.list_all(pool, server, method), registry.enabled, info,
                lambda: listen.POLL_SECONDS, state.lists.clear, functools.partial(changes.follow, pool))
    yield
    await poller.close()
