"""The caller's filtered catalogs read fresh (no list cache) for `/mcp` change detection (listen.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import UPSTREAM
from gateway.mcp import catalog, enforce, fanout, listen, naming
from gateway.mcp.aggregated_common import on_error, servers_of
from gateway.mcp.endpoint import principal
from gateway.mcp.state import McpState

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
    """One list method's merged catalog as the caller may see it, from fresh backend lists."""
    per_server = await fanout.gather_lists(request.app[UPSTREAM], fanout.ListCache(ttl=0.0), servers_of(request),
                                           method, on_error(state))
    key, rename = _KEYS[method]
    pairs = [(s, i[key]) for s, items in per_server.items() for i in items if isinstance(i.get(key), str)]
    allowed = await enforce.allowed_items(request, principal(request), method, pairs)
    if method == "tools/list":
        return catalog.merge_tools(per_server, allowed, state.broadcast)
    return catalog.merge_named(per_server, key, allowed, rename)


async def snapshot(request: web.Request, state: McpState, kinds: set[str]) -> dict[str, list[dict[str, Any]]]:
    """Every watched kind's catalog (templates and resources together for resources/list_changed)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for kind in sorted(kinds):
        items: list[dict[str, Any]] = []
        for method in _SOURCES[kind]:
            items.extend({"list": method, **item} for item in await visible(request, state, method))
        out[kind] = items
    return out
