"""The caller's filtered catalogs for `/mcp` change detection (listen.py), from the shared poller.

Backend lists come from `state.catalogs` (catalog_watch.py: one poll per backend and kind for all
streams); this module only applies the caller's policy, once per subject and catalog generation.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import SERVERS, UPSTREAM
from gateway.mcp import catalog, enforce, fanout, listen, naming
from gateway.mcp.aggregated_common import servers_of
from gateway.mcp.endpoint import principal
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig

# notification -> the list methods whose merged, policy-filtered contents it reports on.
_SOURCES = {
    listen.TOOLS: ("tools/list",),
    listen.PROMPTS: ("prompts/list",),
    listen.RESOURCES: ("resources/list", "resources/templates/list"),
}
_KEYS = {  # list method -> (item key, rename)
    "tools/list": ("name", naming.public_name),
    "prompts/list": ("name", naming.public_name),
    "resources/list": ("uri", catalog.wrap_uri),
    "resources/templates/list": ("uriTemplate", catalog.wrap_uri),
}


async def visible(request: web.Request, state: McpState, method: str) -> list[dict[str, Any]]:
    """One list method's merged catalog as the caller may see it, from the shared lists."""
    enabled = {s.name for s in servers_of(request)}
    per_server = {s: items for s, items in state.catalogs.lists.get(method, {}).items() if s in enabled}
    key, rename = _KEYS[method]
    pairs = [(s, i[key]) for s, items in per_server.items() for i in items if isinstance(i.get(key), str)]
    allowed = await enforce.allowed_items(request, principal(request), method, pairs)
    if method == "tools/list":
        return catalog.merge_tools(per_server, allowed, state.settings.mcp_broadcast)
    return catalog.merge_named(per_server, key, allowed, rename)


async def snapshot(request: web.Request, state: McpState, kinds: set[str]) -> dict[str, str]:
    """Every watched kind's digest (templates and resources together for resources/list_changed),
    computed once per subject, kinds and catalog stamp however many of its streams ask."""
    async def compute() -> dict[str, str]:
        out: dict[str, list[dict[str, Any]]] = {}
        for kind in sorted(kinds):
            items: list[dict[str, Any]] = []
            for method in _SOURCES[kind]:
                items.extend({"list": method, **item} for item in await visible(request, state, method))
            out[kind] = items
        return listen.fingerprints(out)

    key = (principal(request).subject, tuple(sorted(kinds)), state.catalogs.stamp())
    result: dict[str, str] = await state.catalogs.view(key, compute)
    return result


async def catalogs_ctx(app: web.Application) -> Any:
    """Cleanup ctx: bind the shared catalog poller to the backends; stop it on shutdown."""
    from gateway.keys import MCP_STATE

    pool, registry, poller = app[UPSTREAM], app[SERVERS], app[MCP_STATE].catalogs

    async def info(server: ServerConfig) -> dict[str, Any]:
        client = pool.client(server)
        await client.ensure_era()
        return client.server_info

    poller.bind(lambda server, method: fanout.list_all(pool, server, method), registry.enabled, info,
                lambda: listen.POLL_SECONDS)
    yield
    await poller.close()
