"""Prompts, resources and completion on `/mcp`: the enabled backends' lists as the caller may see them,
merged; routed reads; policy first."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web

from gateway.calls import pipeline
from gateway.calls.audit import audit
from gateway.keys import SERVERS, UPSTREAM
from gateway.mcp import (
    admission,
    catalog,
    enforce,
    links,
    methods,
    naming,
    protocol,
    uris,
)
from gateway.mcp.endpoint import caller, principal, result_or_error
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig
from gateway.upstream.codec import LIST_KEYS

log = logging.getLogger(__name__)


def servers_of(request: web.Request) -> dict[str, ServerConfig]:
    """The enabled backends by name."""
    return {s.name: s for s in request.app[SERVERS].enabled()}


async def backend_lists(request: web.Request, state: McpState, method: str) -> dict[str, list[dict[str, Any]]]:
    """Every enabled backend's `method` list as the caller's backend sessions see it, fetched
    concurrently (cached); a failing backend is left out and counted, so an agent still sees the
    items of the backends that work."""
    servers, who = list(servers_of(request).values()), caller(request)
    found = await asyncio.gather(*(state.lists.get(request.app[UPSTREAM], s, method, who) for s in servers),
                                 return_exceptions=True)
    out: dict[str, list[dict[str, Any]]] = {}
    for server, result in zip(servers, found, strict=True):
        if not isinstance(result, BaseException):
            out[server.name] = result
        elif isinstance(result, Exception):
            state.metrics.upstream_errors.labels(server.name).inc()
            log.warning("backend left out of aggregated list", extra={"server": server.name, "error": str(result)})
        else:
            raise result
    return out


async def visible_lists(request: web.Request, state: McpState, method: str) -> dict[str, list[dict[str, Any]]]:
    """Every backend's `method` list with only the items the caller may use (one PDP call)."""
    return (await enforce.visible(request, principal(request), method, await backend_lists(request, state, method)))[0]


def locate_resource(request: web.Request, uri: str) -> tuple[ServerConfig, str]:
    """The enabled server and backend URI an aggregated URI names (−32002 when none; normal form only)."""
    servers = servers_of(request)
    found = catalog.unwrap_uri(uri, servers)
    if found is None:
        raise RpcFailure(-32002, f"Resource not found: {uri}", {"uri": uri}, status=200)
    methods.target({"uri": found[1]}, "uri", uri=True)  # decided and forwarded only in normal form
    return servers[found[0]], found[1]


async def located(request: web.Request, state: McpState, method: str, public: str, *,
                  template: bool = False) -> tuple[ServerConfig, str] | None:
    """The server and backend name a public prompt name (`prompts/get`) or aggregated URI stands for,
    among what the caller may use; None when nothing does, once the PDP allowed the name it spells
    (a forbidden and a missing target answer alike, enforce.py). A URI (a `template` one for
    completion) not in normal form is refused only after the PDP allowed it, whether its server
    exists or not."""
    servers = servers_of(request)
    if method == "prompts/get":
        found = naming.split_simple(public, servers)
        if found is None:  # shortened (or unknown): reversed against the catalog, as every replica can
            visible = await visible_lists(request, state, "prompts/list")
            found = naming.resolve(public, {s: [i["name"] for i in items] for s, items in visible.items()})
        spelled = enforce.spelled_name(public)
    else:
        found, spelled = catalog.unwrap_uri(public, servers), catalog.split_uri(public)
        if found is not None and uris.refusal(found[1], template=template) is not None:
            await enforce.refuse_spelled(request, method, spelled)  # the −32602 that follows: for who may read
    if found is None:
        await enforce.refuse_spelled(request, method, spelled)
        return None
    return servers[found[0]], found[1]


# completion/complete's ref type -> what it completes is decided as, and the ref's key naming it
_COMPLETED = {"ref/prompt": ("prompts/get", "name"), "ref/resource": ("resources/read", "uri")}
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
    shown, hidden = await enforce.visible(request, principal(request), method, per_server)
    if method == "tools/list":
        merged = catalog.merge_tools(shown, state.settings.mcp_broadcast)
    else:
        merged = catalog.merge_named(shown, admission.LISTS[method][0], _RENAME[method])
    return merged, hidden


async def get_prompt(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> dict[str, Any]:
    public = methods.target(msg.params, "name")
    found = await located(request, state, "prompts/get", public)
    if found is None:
        raise RpcFailure(protocol.INVALID_PARAMS, f"Unknown prompt: {public}")
    server, name = found
    params = {**protocol.without_meta(msg.params), "name": name}
    call = enforce.call_of(request, "mcp", "prompts/get", (server.name,), name, msg.params.get("arguments"))
    result = await pipeline.run(request, call, lambda _: server, lambda s: _ask(request, s, "prompts/get", params))
    return links.prompt_result(server.name, result)


async def _ask(request: web.Request, server: ServerConfig, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """`/mcp`'s forward for prompts and resources: the backend's result, or its error (masked by the
    pool) as ours."""
    return result_or_error(await request.app[UPSTREAM].request(server, method, params, caller(request)))


async def read_resource(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> dict[str, Any]:
    uri = methods.target(msg.params, "uri")
    await located(request, state, "resources/read", uri)  # "not found" only for a caller who may read it
    server, original = locate_resource(request, uri)
    call = enforce.call_of(request, "mcp", "resources/read", (server.name,), original)
    result = await pipeline.run(request, call, lambda _: server,
                                lambda s: _ask(request, s, "resources/read", {"uri": original}))
    return links.read_result(server.name, result)  # the read URI wrapped again, as are any others


async def complete(request: web.Request, state: McpState, msg: protocol.Message) -> dict[str, Any]:
    """Completion for a prompt's or resource template's arguments, asked of the owning backend."""
    raw_ref = msg.params.get("ref")
    ref: dict[str, Any] = raw_ref if isinstance(raw_ref, dict) else {}
    empty = {"completion": {"values": [], "total": 0, "hasMore": False}}
    kind = ref.get("type")
    method, key = _COMPLETED.get(kind, ("", "")) if isinstance(kind, str) else ("", "")
    found = await located(request, state, method, ref[key], template=True) if method and isinstance(ref.get(key), str) else None
    if found is None:
        return empty
    server, name = found
    if method == "resources/read":
        methods.target({"uri": name}, "uri", uri=True, template=True)
    # Completing a prompt's arguments reveals about as much as the prompt: same permission.
    await enforce.decide(request, method, server.name, name)
    params = {**protocol.without_meta(msg.params), "ref": {**ref, key: name}}
    return await _ask(request, server, "completion/complete", params)
