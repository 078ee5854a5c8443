"""Policy on MCP messages: guarded calls (tools/call, resources/read, prompts/get), list filtering, and
"does not exist" answered like "you may not see it" (below).

Decisions are recorded on the request's AuditInfo, so each guarded call becomes one audit event
like the REST ones. Lists are filtered with one batch/search PDP call, never one call per item.
A PDP failure raises (PdpUnavailable): the caller answers an error and forwards nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from gateway.calls import audit as record
from gateway.calls import pipeline
from gateway.calls.admit import Refused
from gateway.calls.audit import audit
from gateway.calls.call import Action, Call, Entry, Verdict
from gateway.errors import Denied
from gateway.keys import CALLER, SERVERS, UPSTREAM
from gateway.mcp import admission, methods, naming, protocol
from gateway.mcp.endpoint import failure_response, principal, rpc_response
from gateway.mcp.protocol import RpcFailure
from gateway.registry import ServerConfig
from gateway.upstream.codec import LIST_KEYS
from shared.auth import Principal
from shared.authzen import Decision, resource_for, server_resource

POLICY_DENIED = -32003  # implementation-defined range: "forbidden by gateway policy"

# the guarded methods that are calls (gateway/calls): method -> action
CALLS: dict[str, Action] = {"tools/call": "invoke_tool", "resources/read": "read_resource", "prompts/get": "get_prompt"}


def call_of(request: web.Request, entry: Entry, method: str, targets: tuple[str, ...], name: str,
            arguments: object = None, *, broadcast: bool = False) -> Call:
    """A guarded MCP call (tools/call, resources/read, prompts/get) for the pipeline (gateway/calls).

    Upstream it runs as the request's caller: the subject with its agent's capabilities, so a call is
    admitted against the catalog that agent lists (passthrough relays in the agent's own backend
    session, which declared the same capabilities).
    """
    action = CALLS[method]
    caller = request.get(CALLER)
    return Call(entry, principal(request), caller, action, name, targets, arguments, broadcast)


async def decide(request: web.Request, method: str, server: str, name: str, arguments: object = None) -> None:
    """The pipeline's decision on one guarded call on `server` (recorded for audit); Denied when refused."""
    await pipeline.require(request, call_of(request, "mcp", method, (server,), name, arguments))


def refusal(method: str, rid: protocol.RequestId, exc: Denied | Refused, era: protocol.Era) -> dict[str, Any]:
    """The JSON-RPC answer to a call the pipeline refused: a denial (see `denial`), or a call not
    admitted (its JSON-RPC error, HTTP 200 as the spec answers an unknown tool)."""
    if isinstance(exc, Denied):
        return denial(method, rid, exc.decision, era)
    return protocol.error(rid, exc.rpc_code, exc.message)


async def readable(request: web.Request, uris: Sequence[tuple[str, str, str]]) -> list[bool]:
    """Whether each (public URI, server, original URI) may be read, in one PDP request, recorded as
    one audit record listing the allowed and the denied URIs (a subscription is no call: one
    refused URI does not make the request a denial)."""
    found = await pipeline.decisions(request, principal(request), [
        ("read_resource", resource_for("read_resource", server, original), None) for _, server, original in uris])
    allowed = [d.allowed for d in found]
    audit(request).note(resources_allowed=[u for (u, _, _), ok in zip(uris, allowed, strict=True) if ok],
                        resources_denied=[u for (u, _, _), ok in zip(uris, allowed, strict=True) if not ok])
    return allowed


def checked_plan(request: web.Request, server: str, plan: methods.Plan, found: Sequence[Decision]) -> Decision | None:
    """The PDP's answer to a plan's checks (`found`, asked with the server's visibility): the first
    denial, else an allow, recorded for audit; None when there was nothing to decide."""
    if not found:
        return None
    info = audit(request)
    info.mcp_server = server
    action, resource = plan.checks[0]
    info.action, info.tool = action, resource.name
    if len(plan.checks) > 1:
        info.note(checks=[f"{a} {r.id}" for a, r in plan.checks])
    decision = next((d for d in found if not d.allowed), found[0])
    record.checked(info, decision)
    return decision


def plan_refusal(msg: protocol.Message, era: protocol.Era, plan: methods.Plan,
                 decision: Decision | None) -> web.Response | None:
    """The answer refusing a passthrough message that is not a call (the pipeline decides those)
    by policy (`decision`, from `checked_plan`), or None. An unknown method reads as "not found";
    a notification is refused at HTTP level."""
    if decision is None or decision.allowed:
        return None
    failure = None if not plan.other else RpcFailure(
        protocol.METHOD_NOT_FOUND, f"Method not found: {msg.method}", status=404 if era == "modern" else 200)
    if msg.kind == "notification":  # a notification gets no JSON-RPC answer
        code = protocol.METHOD_NOT_FOUND if failure is not None else POLICY_DENIED
        return failure_response(None, RpcFailure(code, f"'{msg.method}' is not permitted", status=400))
    if failure is not None:
        return failure_response(msg.id, failure)
    return rpc_response(denial(msg.method, msg.id, decision, era))


def denial(method: str, rid: protocol.RequestId, decision: Decision, era: protocol.Era) -> dict[str, Any]:
    """The answer to a denied call: an `isError` tool result (agents show it) or a JSON-RPC error."""
    reason = decision.reason or "not permitted by policy"
    if method == "tools/call":
        body = {"content": [{"type": "text", "text": f"Denied by gateway policy: {reason}"}], "isError": True}
        return protocol.result(rid, protocol.with_result_type(body, era))
    return protocol.error(rid, POLICY_DENIED, f"Denied by gateway policy: {reason}")


async def visible(request: web.Request, principal: Principal, method: str,
                  per_server: Mapping[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Each server's items of a `method` list that the caller may use, in one PDP call (an item
    without a name is left out; the others are invisible, not errors); and how many were hidden."""
    key = admission.LISTS[method][0]
    named = {s: [i for i in items or [] if isinstance(i, dict) and isinstance(i.get(key), str)]
             for s, items in per_server.items()}
    pairs = [(s, i[key]) for s, items in named.items() for i in items]
    allowed = await pipeline.permitted(request, principal, admission.ACTION[admission.LISTS[method][1]], pairs)
    kept = {s: [i for i in items if (s, i[key]) in allowed] for s, items in named.items()}
    return kept, len(pairs) - sum(map(len, kept.values()))


async def filter_result(
    request: web.Request, principal: Principal, server: str, method: str, result: Mapping[str, Any],
) -> dict[str, Any]:
    """A list result with only the items the caller may use."""
    list_filter = request.app[UPSTREAM].list_filter
    if list_filter is not None:  # the relayed answer never passed the pool: leave out what cannot be named
        result = list_filter(server, method, result)
    kept, hidden = await visible(request, principal, method, {server: result.get(LIST_KEYS[method])})
    out = {**result, LIST_KEYS[method]: kept[server]}
    if "cacheScope" in out:
        out["cacheScope"] = "private"  # filtered for this caller: not shareable
    info = audit(request)
    info.action = info.action or method.replace("/", "_")
    info.mcp_server = server
    info.note(listed=len(kept[server]), hidden=hidden)
    return out


# "Does not exist" and "you may not see it" answered alike (docs/security/edge.md): a name no catalog
# resolves is decided as the `{server}__{name}` (or `mcpgw://{server}/{uri}`) it spells, so only a
# caller the PDP allows learns that it is unknown; names resolve only among items the caller may use.

def spelled_name(public: str) -> tuple[str, str] | None:
    """(server, name) a prefixed public name spells, whether or not either exists."""
    server, sep, name = public.partition(naming.SEPARATOR)
    return (server, name) if sep and server and name else None


async def refuse_spelled(
    request: web.Request, method: str, spelled: tuple[str, str] | None, arguments: object = None,
) -> None:
    """Denied when the PDP refuses an unresolved target's spelled name (nothing to ask when unspelled)."""
    if spelled is not None:
        await decide(request, method, spelled[0], spelled[1], arguments)


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
    if msg.kind != "request" or msg.method not in CALLS:  # not a call: the plan's checks with visibility
        asks = [(action, resource, None) for action, resource in plan.checks] if plan.kind == "decided" else []
        seen, *found = await pipeline.decisions(request, principal(request), [visibility(name), *asks])
        server = await visible_server(request, seen)  # the plan's answers count only for a caller who may see it
        return plan, None, None, checked_plan(request, name, plan, found), server
    call = call_of(request, "passthrough", msg.method, (name,), str(plan.checks[0][1].name), msg.params.get("arguments"))
    verdict, (seen,) = await pipeline.decide_with(request, call, [visibility(name)])
    return plan, call, verdict, None, await visible_server(request, seen)
