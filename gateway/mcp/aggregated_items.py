"""Prompts, resources and completion on `/mcp`: merged lists, routed reads, policy first."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import UPSTREAM
from gateway.mcp import catalog, enforce, fanout, links, methods, naming, protocol, unseen
from gateway.mcp.aggregated_common import caller, denied, on_error, result_or_error, servers_of
from gateway.mcp.endpoint import principal
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.upstream.codec import LIST_KEYS

_NAMED = {  # method -> (item key, rename)
    "prompts/list": ("name", naming.public_name),
    "resources/list": ("uri", catalog.wrap_uri),
    "resources/templates/list": ("uriTemplate", catalog.wrap_uri),
}


async def list_named(request: web.Request, state: McpState, method: str, params: dict[str, Any]) -> dict[str, Any]:
    per_server = await fanout.gather_lists(request.app[UPSTREAM], state.lists, servers_of(request), method,
                                           on_error(state), caller(request))
    key, rename = _NAMED[method]
    pairs = [(s, i[key]) for s, items in per_server.items() for i in items if isinstance(i.get(key), str)]
    allowed = await enforce.allowed_items(request, principal(request), method, pairs)
    merged = catalog.merge_named(per_server, key, allowed, rename)
    page, nxt = catalog.paginate(merged, params.get("cursor"), state.page_size)
    return {LIST_KEYS[method]: page, **({"nextCursor": nxt} if nxt else {})}


async def _prompt(request: web.Request, state: McpState, public: str, servers: dict[str, Any]) -> tuple[str, str] | None:
    """(server, prompt) a public prompt name stands for, among the prompts the caller may use."""
    found = naming.split_simple(public, servers)
    if found is None:  # shortened (or unknown): reversed against the catalog, as every replica can
        lists = await fanout.gather_lists(request.app[UPSTREAM], state.lists, list(servers.values()),
                                          "prompts/list", on_error(state), caller(request))
        names = {s: [p["name"] for p in items if isinstance(p.get("name"), str)] for s, items in lists.items()}
        found = naming.resolve(public, await unseen.visible_names(request, "prompts/list", names))
    return found


async def get_prompt(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Any:
    public = enforce.target("prompts/get", msg.params)
    servers = {s.name: s for s in servers_of(request)}
    found = await _prompt(request, state, public, servers)
    if found is None:
        # Decided as the name it spells first: "unknown" only for a caller who may get it.
        spelled = await unseen.decide_spelled(request, "prompts/get", unseen.spelled_name(public), {})
        if spelled is not None:
            raise denied(msg, spelled, era)
        raise RpcFailure(protocol.INVALID_PARAMS, f"Unknown prompt: {public}")
    server, name = found
    params = {**{k: v for k, v in msg.params.items() if k != "_meta"}, "name": name}
    decision = await enforce.check_call(request, principal(request), server, "prompts/get", name, params)
    if not decision.allowed:
        raise denied(msg, decision, era)
    result = result_or_error(await request.app[UPSTREAM].request(servers[server], "prompts/get", params,
                                                                 caller(request)))
    return links.prompt_result(server, result)


async def read_resource(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Any:
    uri = enforce.target("resources/read", msg.params)
    servers = {s.name: s for s in servers_of(request)}
    found = catalog.unwrap_uri(uri, servers)
    if found is None:
        # Decided as the server it spells first: "not found" only for a caller who may read it.
        spelled = await unseen.decide_spelled(request, "resources/read", unseen.spelled_uri(uri), {})
        if spelled is not None:
            raise denied(msg, spelled, era)
        raise RpcFailure(-32002, f"Resource not found: {uri}", {"uri": uri}, status=200)
    server, original = found
    methods.target({"uri": original}, "uri", uri=True)  # decided and forwarded only in normal form
    decision = await enforce.check_call(request, principal(request), server, "resources/read", original, {})
    if not decision.allowed:
        raise denied(msg, decision, era)
    result = result_or_error(await request.app[UPSTREAM].request(servers[server], "resources/read",
                                                                  {"uri": original}, caller(request)))
    return links.read_result(server, result)  # the read URI wrapped again, as are any others


async def complete(request: web.Request, state: McpState, msg: protocol.Message) -> Any:
    """Completion for a prompt's or resource template's arguments, asked of the owning backend."""
    raw_ref = msg.params.get("ref")
    ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    servers = {s.name: s for s in servers_of(request)}
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
        refused = await unseen.decide_spelled(request, method, spelled, {})
        if refused is not None:
            raise denied(msg, refused, "handshake")
        return empty
    server, name = found
    if method == "resources/read":
        methods.target({"uri": name}, "uri", uri=True, template=True)
    # Completing a prompt's arguments reveals about as much as the prompt: same permission.
    decision = await enforce.check_call(request, principal(request), server, method, name, {})
    if not decision.allowed:
        raise denied(msg, decision, "handshake")
    params = {**{k: v for k, v in msg.params.items() if k != "_meta"}, "ref": new_ref}
    return result_or_error(await request.app[UPSTREAM].request(servers[server], "completion/complete", params,
                                                               caller(request)))
