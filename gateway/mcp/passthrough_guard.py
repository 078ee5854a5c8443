"""What `/servers/{name}/mcp` checks before a message goes upstream: the method's plan decided by
policy, and `Mcp-Param-*` headers checked against the body (methods.py, params.py)."""

from __future__ import annotations

from aiohttp import web

from gateway.calls.call import Call
from gateway.keys import UPSTREAM
from gateway.mcp import endpoint, enforce, methods, params, protocol
from gateway.mcp.endpoint import principal, rpc_response
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig


def call_of(request: web.Request, server: str, msg: protocol.Message, plan: methods.Plan) -> Call | None:
    """The pipeline's Call for a guarded call (tools/call, resources/read, prompts/get); None otherwise."""
    if msg.kind != "request" or msg.method not in enforce.CALLS:
        return None
    name = str(plan.checks[0][1].name)
    return enforce.call_of(request, "passthrough", msg.method, (server,), name, msg.params.get("arguments"))


async def decide(request: web.Request, server: str, msg: protocol.Message, era: protocol.Era,
                 plan: methods.Plan) -> web.Response | None:
    """The answer refusing `msg` (not a call: the pipeline decides those) by policy, or None."""
    decision = await enforce.check_plan(request, principal(request), server, msg.method, msg.params, plan)
    if decision is None or decision.allowed:
        return None
    failure = enforce.plan_denial(msg.method, msg.id, decision, era, plan)
    if msg.kind == "notification":  # a notification gets no JSON-RPC answer: refuse it at HTTP level
        code = protocol.METHOD_NOT_FOUND if failure is not None else enforce.POLICY_DENIED
        return endpoint.failure_response(None, RpcFailure(code, f"'{msg.method}' is not permitted", status=400))
    if failure is not None:
        return endpoint.failure_response(msg.id, failure)
    return rpc_response(enforce.denial(msg.method, msg.id, decision, era))


async def param_headers(request: web.Request, state: McpState, server: ServerConfig, msg: protocol.Message,
                        era: protocol.Era) -> dict[str, str]:
    """`Mcp-Param-*` to forward: none unless the client sent some; then checked against, and rebuilt from, the body."""
    client = params.sent(request.headers)
    if not client or era != "modern" or msg.method != "tools/call":
        return {}  # nothing to mirror (a 2025-era backend reads no Mcp-Param-* header)
    tools = await state.lists.get(request.app[UPSTREAM], server, "tools/list")
    tool = next((t for t in tools if t.get("name") == msg.params.get("name")), None)
    if tool is None:
        raise RpcFailure(protocol.HEADER_MISMATCH, "Mcp-Param-* headers sent for a tool the backend does not list")
    wanted = params.expected(tool.get("inputSchema"), msg.params.get("arguments"))
    params.check(client, wanted)
    return wanted
