""""Does not exist" and "you may not see it" answered alike on `/mcp` (docs/security/edge.md).

The PDP decides on names, not on what exists, so asking it first about the name a caller sent
gives the same answer for a missing and a forbidden target. A name no catalog resolves is
decided as the `{server}__{name}` (or `mcpgw://{server}/{uri}`) it spells: a denial then reads
exactly like the denial of an existing target; only a caller the PDP allows learns that it is
unknown. Names are resolved only among the items the caller may use (the view its lists give),
so an unprefixed or hash-shortened name of a hidden item is as unknown as a made-up one.
"""

from __future__ import annotations

from aiohttp import web

from gateway.calls import pipeline
from gateway.calls.audit import audit
from gateway.calls.call import Call, Verdict
from gateway.keys import SERVERS
from gateway.mcp import enforce, methods, naming, protocol
from gateway.mcp.endpoint import principal
from gateway.mcp.protocol import RpcFailure
from gateway.registry import ServerConfig
from shared.authzen import Decision, server_resource


def spelled_name(public: str) -> tuple[str, str] | None:
    """(server, name) a prefixed public name spells, whether or not either exists."""
    server, sep, name = public.partition(naming.SEPARATOR)
    return (server, name) if sep and server and name else None


async def refuse_spelled(
    request: web.Request, method: str, spelled: tuple[str, str] | None, arguments: object = None,
) -> None:
    """Denied when the PDP refuses an unresolved target's spelled name (nothing to ask when unspelled)."""
    if spelled is not None:
        await enforce.decide(request, method, spelled[0], spelled[1], arguments)


UNKNOWN_SERVER = "unknown or disabled MCP server '{}'"


def visibility(name: str) -> pipeline.Ask:
    """The PDP check that lets a caller see passthrough server `name` (`list_tools` on it)."""
    return ("list_tools", server_resource(name), None)


async def visible_server(request: web.Request, decision: Decision | None = None) -> ServerConfig:
    """The passthrough's enabled server, once the PDP lets the caller see it (`visibility`; its
    `decision` when already asked, batched with a call's).

    Asked before the registry, so an unknown, a disabled and a forbidden server all get the same
    404 JSON-RPC error (and a forbidden one is audited as the denial it is).
    """
    name = request.match_info["name"]
    if decision is None:
        decision = (await pipeline.decisions(request, principal(request), [visibility(name)]))[0]
    server = request.app[SERVERS].get(name)
    if not decision.allowed:
        info = audit(request)
        info.mcp_server, info.decision, info.denied = name, decision, True
    if server is None and decision.allowed:
        audit(request).not_found = True  # allowed, but nothing to forward to: not audited as an allow
    if server is None or not decision.allowed:
        raise RpcFailure(protocol.INVALID_PARAMS, UNKNOWN_SERVER.format(name), status=404)
    return server


async def passthrough_target(request: web.Request, msg: protocol.Message,
                             ) -> tuple[methods.Plan, Call | None, Verdict | None, Decision | None, ServerConfig]:
    """Passthrough's (plan of the message, guarded call, the PDP's verdict on it, its decision on a
    message that is not a call, server): "may see this server" and the message's own checks are
    asked in one PDP request; a malformed message is answered only to a caller who may see the server."""
    name = request.match_info["name"]
    try:
        plan = methods.plan(name, msg.kind, msg.method, msg.params)
    except RpcFailure:
        await visible_server(request)
        raise
    call = enforce.passthrough_call(request, name, msg, plan)
    if call is None:
        seen, *found = await pipeline.decisions(request, principal(request), [visibility(name), *enforce.plan_asks(plan)])
        server = await visible_server(request, seen)  # the plan's answers count only for a caller who may see it
        return plan, None, None, enforce.checked_plan(request, name, plan, found), server
    verdict, (seen,) = await pipeline.decide_with(request, call, [visibility(name)])
    return plan, call, verdict, None, await visible_server(request, seen)
