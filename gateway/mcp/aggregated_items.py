"""Prompts, resources and completion on `/mcp`: merged lists, routed reads, policy first."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.calls import pipeline
from gateway.calls.audit import audit
from gateway.keys import UPSTREAM
from gateway.masking import masked_response
from gateway.mcp import (
    admission,
    catalog,
    enforce,
    links,
    methods,
    naming,
    protocol,
    unseen,
)
from gateway.mcp.aggregated_common import (
    backend_lists,
    caller,
    locate_resource,
    result_or_error,
    servers_of,
    visible_catalog,
)
from gateway.mcp.endpoint import principal
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig
from gateway.upstream.codec import LIST_KEYS

_RENAME = {"prompts/list": naming.public_name, "resources/list": catalog.wrap_uri,
           "resources/templates/list": catalog.wrap_uri}


async def list_named(request: web.Request, state: McpState, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A merged list of what the caller may use, paged."""
    merged, hidden = await permitted(request, state, method, await backend_lists(request, state, method))
    page, nxt = catalog.paginate(merged, params.get("cursor"), state.settings.mcp_page_size)
    audit(request).note(listed=len(merged), hidden=hidden)
    return {LIST_KEYS[method]: page, **({"nextCursor": nxt} if nxt else {})}


async def permitted(request: web.Request, state: McpState, method: str,
                    per_server: dict[str, list[dict[str, Any]]]) -> tuple[list[dict[str, Any]], int]:
    """The items of `per_server` the caller may use, merged (tools prefixed, with broadcast names; the
    others renamed); and how many were hidden."""
    key = admission.LISTS[method][0]
    pairs = [(s, i[key]) for s, items in per_server.items() for i in items if isinstance(i.get(key), str)]
    allowed = await enforce.allowed_items(request, principal(request), method, pairs)
    if method == "tools/list":
        merged = catalog.merge_tools(per_server, allowed, state.settings.mcp_broadcast)
    else:
        merged = catalog.merge_named(per_server, key, allowed, _RENAME[method])
    return merged, len(pairs) - len(allowed)


async def _prompt(request: web.Request, state: McpState, public: str, servers: dict[str, ServerConfig]) -> tuple[str, str] | None:
    """(server, prompt) a public prompt name stands for, among the prompts the caller may use."""
    found = naming.split_simple(public, servers)
    if found is None:  # shortened (or unknown): reversed against the catalog, as every replica can
        found = naming.resolve(public, (await visible_catalog(request, state, "prompts/list"))[1])
    return found


async def get_prompt(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> dict[str, Any]:
    public = methods.target(msg.params, "name")
    servers = servers_of(request)
    found = await _prompt(request, state, public, servers)
    if found is None:
        # Decided as the name it spells first: "unknown" only for a caller who may get it.
        await unseen.refuse_spelled(request, "prompts/get", unseen.spelled_name(public))
        raise RpcFailure(protocol.INVALID_PARAMS, f"Unknown prompt: {public}")
    server, name = found
    params = {**{k: v for k, v in msg.params.items() if k != "_meta"}, "name": name}
    call = enforce.call_of(request, "mcp", "prompts/get", (server,), name, msg.params.get("arguments"))
    result = await pipeline.run(request, call, servers.__getitem__, lambda s: _ask(request, s, "prompts/get", params))
    return links.prompt_result(server, result)


async def _ask(request: web.Request, server: ServerConfig, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """`/mcp`'s forward for prompts and resources: the backend's result, or its error (masked) as ours."""
    pool = request.app[UPSTREAM]
    response = await pool.request(server, method, params, caller(request))
    return result_or_error(masked_response(response, pool.credentials.forms(server)))


async def read_resource(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> dict[str, Any]:
    uri = methods.target(msg.params, "uri")
    servers = servers_of(request)
    if catalog.unwrap_uri(uri, servers) is None:
        # Decided as the server it spells first: "not found" only for a caller who may read it.
        await unseen.refuse_spelled(request, "resources/read", unseen.spelled_uri(uri))
    server, original = locate_resource(request, uri)
    call = enforce.call_of(request, "mcp", "resources/read", (server.name,), original)
    result = await pipeline.run(request, call, servers.__getitem__,
                                lambda s: _ask(request, s, "resources/read", {"uri": original}))
    return links.read_result(server.name, result)  # the read URI wrapped again, as are any others


async def complete(request: web.Request, state: McpState, msg: protocol.Message) -> dict[str, Any]:
    """Completion for a prompt's or resource template's arguments, asked of the owning backend."""
    raw_ref = msg.params.get("ref")
    ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    servers = servers_of(request)
    empty = {"completion": {"values": [], "total": 0, "hasMore": False}}
    if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
        found = await _prompt(request, state, ref["name"], servers)
        method, new_ref = "prompts/get", {**ref, "name": found[1]} if found else ref
    elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
        found = catalog.unwrap_uri(ref["uri"], servers)
        method, new_ref = "resources/read", {**ref, "uri": found[1]} if found else ref
    else:
        return empty
    if found is None:
        # Decided as the name it spells, as prompts/get and resources/read are: a forbidden and a
        # missing target answer alike.
        spelled = unseen.spelled_name(ref["name"]) if method == "prompts/get" else unseen.spelled_uri(ref["uri"])
        await unseen.refuse_spelled(request, method, spelled)
        return empty
    server, name = found
    if method == "resources/read":
        methods.target({"uri": name}, "uri", uri=True, template=True)
    # Completing a prompt's arguments reveals about as much as the prompt: same permission.
    await enforce.decide(request, method, server, name)
    params = {**{k: v for k, v in msg.params.items() if k != "_meta"}, "ref": new_ref}
    return await _ask(request, servers[server], "completion/complete", params)
