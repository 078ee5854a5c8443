"""`GET /tools` and `POST /tools/{name}/invoke`: the caller's permitted tools, aggregated in MCP shape."""

from __future__ import annotations

import time

from aiohttp import web

from gateway import aggregate, broadcast
from gateway.calls import pipeline
from gateway.keys import SERVERS
from gateway.routes import common as c
from gateway.routes.rest import invocable, list_many, run_broadcast
from shared.authzen import server_resource
from shared.jsonutil import json_response

routes = web.RouteTableDef()


@routes.get("/tools")
async def list_tools(request: web.Request) -> web.Response:
    """`{tools: [...]}` across every enabled server the caller may list, filtered to invocable tools."""
    info = c.audit(request)
    info.action = "list_tools"
    names = [s.name for s in request.app[SERVERS].enabled()]
    decisions = await pipeline.decisions(request, c.principal(request), [("list_tools", server_resource(n), None) for n in names])
    allowed = [n for n, d in zip(names, decisions, strict=True) if d.allowed]
    listed = await list_many(request, allowed)
    per_server = {n: v for n, v in listed.items() if not isinstance(v, BaseException)}
    permitted = await invocable(request, per_server)
    tools = aggregate.aggregate_tools(per_server, permitted)
    info.note(servers=sorted(per_server), unreachable=sorted(set(listed) - set(per_server)), tools=len(tools))
    return json_response({"tools": tools})


@routes.post("/tools/{name}/invoke")
async def invoke(request: web.Request) -> web.Response:
    """Run the tool on every permitted server offering it; MCP `content` with a summary."""
    start = time.perf_counter()
    tool = request.match_info["name"]
    c.attempted(request, tool=tool)
    arguments = await c.json_object(request, allow_empty=True)
    targets, results, errors = await run_broadcast(request, "tools", tool, arguments)
    outcome = broadcast.broadcast_response(tool, targets, results, errors, start)
    body = aggregate.invocation_content(tool, arguments, outcome)
    body["results"] = outcome["results"]
    body["errors"] = outcome["errors"]
    return json_response(body)
