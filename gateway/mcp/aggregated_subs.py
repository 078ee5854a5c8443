"""Resource subscriptions on `/mcp`: `resources/subscribe` / `unsubscribe` (2025 era) and the
`resourceSubscriptions` of a 2026-07-28 `subscriptions/listen`; policy first (like resources/read)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway.keys import UPSTREAM
from gateway.mcp import catalog, endpoint, enforce, methods, protocol, unseen
from gateway.mcp.aggregated_common import denied, servers_of
from gateway.mcp.endpoint import principal
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.mcp.subscriptions import Subscriber, updated
from gateway.upstream import sse
from gateway.upstream.client import LEGACY
from shared.jsonutil import dumps_str


def _locate(request: web.Request, uri: str) -> tuple[Any, str]:
    servers = {s.name: s for s in servers_of(request)}
    found = catalog.unwrap_uri(uri, servers)
    if found is None:
        raise RpcFailure(-32002, f"Resource not found: {uri}", {"uri": uri}, status=200)
    methods.target({"uri": found[1]}, "uri", uri=True)  # decided and forwarded only in normal form
    return servers[found[0]], found[1]


async def _follow(request: web.Request, state: McpState, key: Subscriber, server: Any, uris: list[str],
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


async def subscribe(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Any:
    """`resources/subscribe` / `unsubscribe`, bound to the caller's 2025-era session on this replica."""
    if era != "handshake":  # 2026-07-28 subscribes through subscriptions/listen
        raise RpcFailure(protocol.METHOD_NOT_FOUND, f"Method not found: {msg.method}")
    uri = enforce.target("resources/read", msg.params)
    session = endpoint.open_session(request, state, None)
    if catalog.unwrap_uri(uri, {s.name for s in servers_of(request)}) is None and unseen.spelled_uri(uri):
        # A server that does not exist answers as one the caller may not see (docs/security/edge.md):
        # subscribe is decided on the name spelled, unsubscribe is the no-op it is for a stranger.
        if msg.method == "resources/unsubscribe":
            return {}
        spelled = await unseen.decide_spelled(request, "resources/read", unseen.spelled_uri(uri), {})
        if spelled is not None:
            raise denied(msg, spelled, era)
    server, original = _locate(request, uri)
    key = (principal(request).subject, session.sid)
    if msg.method == "resources/unsubscribe":
        await state.hub.unsubscribe(key, server.name, original)
        return {}
    decision = await enforce.check_call(request, principal(request), server.name, "resources/read", original, {})
    if not decision.allowed:
        raise denied(msg, decision, era)
    await _follow(request, state, key, server, [original], session.issued_at + state.codec.max_age)
    return {}


async def listen_resources(request: web.Request, state: McpState, wanted: Any) -> tuple[Subscriber, list[str]]:
    """Subscribe a new listen stream to the permitted URIs of `wanted`; the key and the honoured URIs."""
    key = (principal(request).subject, f"listen:{uuid.uuid4().hex}")
    by_server: dict[str, tuple[Any, list[str]]] = {}
    honoured: list[str] = []
    for uri in wanted if isinstance(wanted, list) else []:
        if not isinstance(uri, str):
            continue
        try:
            server, original = _locate(request, uri)
        except RpcFailure:
            continue  # not a resource of a backend the caller may reach: left out of the ack
        decision = await enforce.check_call(request, principal(request), server.name, "resources/read", original, {})
        if decision.allowed:
            by_server.setdefault(server.name, (server, []))[1].append(original)
            honoured.append(uri)
    try:
        for server, uris in by_server.values():
            await _follow(request, state, key, server, uris)
    except BaseException:
        await state.hub.drop(key)
        raise
    return key, honoured


def drainer(state: McpState, key: Subscriber, subscription: Any) -> tuple[Callable[[], bytes], Callable[[], None]]:
    """A stream's update source (SSE bytes of queued updates) and its detach callback."""
    queue = state.hub.attach(key)

    def drain() -> bytes:
        out = []
        while not queue.empty():
            server, uri = queue.get_nowait()
            out.append(sse.encode(dumps_str(updated(server, uri, subscription))))
        return b"".join(out)

    return drain, lambda: state.hub.detach(key, queue)
