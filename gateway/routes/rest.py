"""The REST API: /mcp/* (same request and response shapes as the gateway this replaces) and
`GET /tools`, `POST /tools/{name}/invoke` (the caller's permitted tools, aggregated in MCP shape).

Order inside every handler: validate input (400) → ask the PDP (403/503) → find the server (404)
→ call the backend (502/504). Nothing reaches a backend before the PDP has said yes, and whether a
server or tool exists is told only to a caller the PDP allows to use it (docs/security/edge.md).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway import aggregate, broadcast
from gateway.calls import pipeline
from gateway.calls.call import Entry
from gateway.errors import Denied, NotFound
from gateway.keys import SERVERS, SETTINGS, UPSTREAM
from gateway.registry import ServerConfig
from gateway.routes import common as c
from shared.authzen import server_resource
from shared.jsonutil import json_response

routes = web.RouteTableDef()


@routes.get("/mcp/servers")
async def list_servers(request: web.Request) -> web.Response:
    """Servers the caller may see (enabled and disabled), filtered in one batch decision."""
    info = c.audited(request, "list_servers")
    servers = sorted(request.app[SERVERS].servers.values(), key=lambda s: s.name)
    allowed = set(await c.allowed(request, "list_servers", [s.name for s in servers]))
    visible = [c.server_summary(s) for s in servers if s.name in allowed]
    info.note(visible=len(visible), hidden=len(servers) - len(visible))
    return json_response({"servers": visible, "count": len(visible)})


@routes.get("/mcp/server/{name}/info")
async def server_info(request: web.Request) -> web.Response:
    """Configuration (without credentials) and backend details of one server."""
    name = request.match_info["name"]
    c.audited(request, "server_info", name)
    # The PDP first: whether a server exists is told only to callers who may see it.
    await c.authorize(request, "server_info", server_resource(name))
    known = request.app[SERVERS].servers.get(name)
    if known is None:
        raise NotFound(f"unknown MCP server '{name}'")
    body = c.server_summary(known)
    body.update(timeout=known.timeout, tools=list(known.tools), metadata=dict(known.metadata))
    body["auth_method"] = known.auth.method
    return json_response(body)


@routes.get("/mcp/list-tools")
async def list_tools(request: web.Request) -> web.Response:
    """`{mcp_server, tools, count}`: the server's tools the caller may invoke."""
    name = c.query_server(request)
    c.audited(request, "list_tools", name)
    await c.authorize(request, "list_tools", server_resource(name))
    server = pipeline.enabled_server(request, name)
    tools = await pipeline.timed(request, name, "list_tools", request.app[UPSTREAM].list_tools(server.name))
    permitted = await invocable(request, {name: tools})
    tools = [t for t in tools if (name, t.get("name")) in permitted]
    return json_response({"mcp_server": name, "tools": tools, "count": len(tools)})


@routes.post("/mcp/invoke")
async def invoke(request: web.Request) -> web.Response:
    """`{success, tool_name, mcp_server, result, execution_time_ms}` for one tool call."""
    start = time.perf_counter()
    name = c.query_server(request)
    c.audited(request, "invoke_tool", name)
    body = await c.json_object(request)
    tool = c.field(body, "tool_name", str, required=True)
    arguments = c.field(body, "parameters", dict, default={})
    call = c.tool_call(request, "rest", tool, arguments, (name,))
    # The server is looked up only after the PDP, so a caller who may not call the tool cannot probe
    # which servers and tools exist: a denial reads the same for a missing and an existing target.
    # A backend's "unknown tool" is a 404 and an isError result an audited failure (calls/outcome.py).
    result = await pipeline.run(request, call, functools.partial(pipeline.enabled_server, request),
                                functools.partial(pipeline.forward_result, request, call))
    return json_response({
        "success": not (isinstance(result, dict) and result.get("isError")),
        "tool_name": tool,
        "mcp_server": name,
        "result": result,
        "execution_time_ms": c.elapsed_ms(start),
    })


@routes.post("/mcp/invoke-broadcast")
async def invoke_broadcast(request: web.Request) -> web.Response:
    """Run one tool on many servers; each target authorized on its own, partial results returned."""
    start = time.perf_counter()
    c.audited(request, "invoke_tool")
    body = await c.json_object(request)
    tool = c.field(body, "tool_name", str, required=True)
    arguments = c.field(body, "parameters", dict, default={})
    names = c.string_list(body, "mcp_servers")
    tags = c.string_list(body, "tags")
    outcome = await run_broadcast(request, "rest_broadcast", tool, arguments, names, tags)
    return json_response(broadcast.broadcast_response(tool, *outcome, start))


@routes.get("/tools")
async def list_all_tools(request: web.Request) -> web.Response:
    """`{tools: [...]}` across every enabled server the caller may list, filtered to invocable tools."""
    info = c.audited(request, "list_tools")
    listed = await list_many(request, await c.allowed(request, "list_tools", [s.name for s in request.app[SERVERS].enabled()]))
    per_server = {n: v for n, v in listed.items() if not isinstance(v, BaseException)}
    permitted = await invocable(request, per_server)
    tools = aggregate.aggregate_tools(per_server, permitted)
    info.note(servers=sorted(per_server), unreachable=sorted(set(listed) - set(per_server)), tools=len(tools))
    return json_response({"tools": tools})


@routes.post("/tools/{name}/invoke")
async def invoke_everywhere(request: web.Request) -> web.Response:
    """Run the tool on every permitted server offering it; MCP `content` with a summary."""
    start = time.perf_counter()
    tool = request.match_info["name"]
    c.audited(request, "invoke_tool", tool=tool)
    arguments = await c.json_object(request, allow_empty=True)
    targets, results, errors = await run_broadcast(request, "tools", tool, arguments)
    outcome = broadcast.broadcast_response(tool, targets, results, errors, start)
    return json_response(aggregate.invocation_content(tool, arguments, outcome))


async def run_broadcast(
    request: web.Request, entry: Entry, tool: str, arguments: dict[str, Any],
    names: list[str] | None = None, tags: list[str] | None = None,
) -> tuple[list[str], dict[str, Any], dict[str, str]]:
    """Decide (one batch), plan among the permitted, call concurrently; (targets, results, errors).

    The batch covers the named servers, else every enabled one, before tags, hints or probes: the
    answer never depends on servers the caller may not use (named ones read "denied: …" whether they
    exist or not, unnamed ones are left out; none permitted among unnamed ones is a 403).
    """
    settings = request.app[SETTINGS]
    # One snapshot for the whole broadcast: a reload while we await must not make a planned
    # target vanish from under us (KeyError → 500).
    servers = request.app[SERVERS].servers
    ends = time.monotonic() + settings.broadcast_deadline  # probes and calls share one deadline
    candidates = list(dict.fromkeys(names)) if names else [s.name for s in servers.values() if s.enabled]
    if not candidates:
        raise NotFound(f"no MCP server you may call offers tool '{tool}'")
    call = c.tool_call(request, entry, tool, arguments, tuple(candidates), broadcast=True)
    verdict = await pipeline.decide(request, call)
    permitted = verdict.permitted
    if not permitted and not names:
        raise Denied(verdict.decision, f"not permitted to invoke '{tool}' on any server")
    if names:  # named: each answered on its own ("denied: …" whether it exists or not)
        plan = broadcast.plan_targets(servers, tool, permitted, tags) if permitted else broadcast.Plan()
    else:
        plan = broadcast.plan_targets({n: servers[n] for n in permitted if n in servers}, tool, None, tags)
    pipeline.check_fanout(len(plan.targets), settings.broadcast_max_targets)
    found: list[str] = []
    unlisted: dict[str, str] = {}
    if plan.to_probe:
        # At most half the deadline goes to finding targets, so the calls keep time of their own.
        listed = await list_many(request, plan.to_probe, servers=servers, deadline=settings.broadcast_deadline / 2)
        names_by_server: dict[str, list[str] | BaseException] = {
            k: v if isinstance(v, BaseException) else [str(t.get("name")) for t in v] for k, v in listed.items()
        }
        found, unlisted = broadcast.resolve_probes(plan.to_probe, names_by_server, tool)
    targets = [*plan.targets, *found]
    shown_denied = verdict.denied if names else {}  # a server the caller did not name is not mentioned
    if not (targets or plan.errors or unlisted or shown_denied):
        raise NotFound(f"no MCP server you may call offers tool '{tool}'")
    results, errors = await pipeline.many(
        request, call, servers, targets, functools.partial(pipeline.forward_result, request, call),
        known={**plan.errors, **shown_denied, **unlisted}, deadline=max(ends - time.monotonic(), 0.001))
    return [*targets, *(n for n in errors if n not in targets)], results, errors


async def list_many(
    request: web.Request, names: list[str], *, servers: Mapping[str, ServerConfig] | None = None, deadline: float | None = None
) -> dict[str, list[dict[str, Any]] | BaseException]:
    """Tool lists of several servers concurrently; a failure is returned, not raised."""
    pool = request.app[UPSTREAM]
    deadline = request.app[SETTINGS].broadcast_deadline if deadline is None else deadline
    servers = request.app[SERVERS].servers if servers is None else servers
    # Fresh catalogs answer at once: no task, no wait (most probes). The pool's catalog: one listing
    # in flight per backend however many broadcasts probe it.
    catalogs = {name: found for name in names if (found := pool.cached_catalog(name)) is not None}

    async def one(name: str) -> Mapping[str, Mapping[str, Any]]:
        return await pipeline.timed(request, name, "list_tools", pool.catalog(name))

    results, failures = await broadcast.run_calls(
        [n for n in names if n not in catalogs], one, timeouts={n: servers[n].timeout for n in names if n in servers},
        deadline=deadline, describe_error=pipeline.describe,
    )
    catalogs.update(results)
    out: dict[str, list[dict[str, Any]] | BaseException] = {n: RuntimeError(msg) for n, msg in failures.items()}
    out.update({n: [dict(tool) for tool in found.values()] for n, found in catalogs.items()})
    return {n: out[n] for n in names if n in out}


async def invocable(request: web.Request, per_server: dict[str, list[dict[str, Any]]]) -> set[tuple[str, str]]:
    """(server, tool) pairs the caller may invoke, in one resource-search call."""
    pairs = [(s, t["name"]) for s, tools in per_server.items() for t in tools if isinstance(t.get("name"), str)]
    return await pipeline.permitted(request, c.principal(request), "invoke_tool", pairs)

