"""`GET /tools` and `POST /tools/{name}/invoke`: the caller's permitted tools, aggregated in MCP shape."""

from __future__ import annotations

import time

from aiohttp import web

from gateway import aggregate, broadcast
from gateway.keys import SERVERS
from gateway.routes import common as c
from gateway.routes.rest import invocable, list_many, run_broadcast
from shared.jsonutil import json_response

routes = web.RouteTableDef()


@routes.get("/tools")
async def list_tools(request: web.Request) -> web.Response:
    """`{tools: [...]}` across every enabled server the caller may list, filtered to invocable tools."""
    info = c.audited(request, "list_tools")
    listed = await list_many(request, await c.allowed(request, "list_tools", [s.name for s in request.app[SERVERS].enabled()]))
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
    c.audited(request, "invoke_tool", tool=tool)
    arguments = await c.json_object(request, allow_empty=True)
    targets, results, errors = await run_broadcast(request, "tools", tool, arguments)
    outcome = broadcast.broadcast_response(tool, targets, results, errors, start)
    body = aggregate.invocation_content(tool, arguments, outcome)
    body["results"] = outcome["results"]
    body["errors"] = outcome["errors"]
    return json_response(body)
