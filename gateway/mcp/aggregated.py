"""`/mcp`: one virtual MCP server offering every backend's permitted tools, prompts and resources.

The gateway answers the protocol itself (initialize / server/discover, paging, sessions) and
reaches backends through the upstream pool, which speaks each backend's own era. Handlers stay
thin: merging, naming and paging are the pure functions of catalog.py.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiohttp import web

from gateway import broadcast as bc
from gateway.calls.admit import Refused, admit, refused_everywhere
from gateway.calls.audit import audit
from gateway.errors import to_gateway_error
from gateway.keys import ANSWER_STREAM, MCP_STATE, POLICY, SCHEMAS, SETTINGS, UPSTREAM
from gateway.mcp import aggregated_items as items
from gateway.mcp import aggregated_subs as subs
from gateway.mcp import (
    calls,
    catalog,
    endpoint,
    enforce,
    fanout,
    inflight,
    links,
    listen,
    methods,
    naming,
    protocol,
    unseen,
    watched,
)
from gateway.mcp.aggregated_common import (
    caller,
    on_error,
    remember_caller,
    result_or_error,
    servers_of,
)
from gateway.mcp.endpoint import HttpReject, principal, rpc_response
from gateway.mcp.protocol import H_SESSION, RpcFailure
from gateway.mcp.state import McpState, method_label
from gateway.mcp.streams import ClientGone, until_disconnect
from gateway.upstream import sse
from gateway.upstream.errors import UpstreamError
from gateway.upstream.sessions import canonical_capabilities
from shared.jsonutil import dumps_str

log = logging.getLogger(__name__)
ENDPOINT = "aggregated"
SERVER_INFO = {"name": "mcpgw", "title": "mcpgw MCP gateway", "version": "0.1.0"}
CAPABILITIES = {"tools": {"listChanged": True}, "prompts": {"listChanged": True},
                "resources": {"listChanged": True, "subscribe": True}, "completions": {}}


async def post(request: web.Request) -> web.StreamResponse:
    """One client message to the virtual server."""
    state: McpState = request.app[MCP_STATE]
    rid = None
    era: protocol.Era = "modern"
    session = None
    try:
        endpoint.check_transport(request, state, post=True)
        msg = await endpoint.read_message(request, endpoint.body_limit(request))
        rid = msg.id
        era = protocol.detect_era(msg, request.headers)
        state.metrics.message(ENDPOINT, "response" if msg.kind == "response" else method_label(msg.method), era)
        audit(request).action = msg.method or "response"
        if msg.kind == "notification" and msg.method not in methods.CLIENT_NOTIFICATIONS:
            methods.plan("", msg.kind, msg.method, msg.params)  # a request method without an id: 400
        protocol.check_routing_headers(msg, request.headers)
        session = None
        if era == "handshake":
            if msg.kind == "request" and msg.method == "initialize":
                return _initialize(request, state, msg)
            session = endpoint.open_session(request, state, None)
        elif msg.kind == "request":
            protocol.validate_modern(msg, request.headers)
        remember_caller(request, era, msg.params, session)
        if msg.kind == "response":
            # An agent's answer to a backend's sampling / elicitation / roots request (calls.py).
            state.pending.answer(principal(request).subject, msg.id, msg.body)
        if msg.method == "notifications/cancelled" and session is not None:
            subject = principal(request).subject
            state.inflight.cancel(inflight.key(subject, session.sid, inflight.cancelled_id(msg.params)))
        if msg.kind != "request":
            return endpoint.accepted()
        work = _answer(request, state, msg, era)
        if session is None:
            result = await until_disconnect(request, work)
        else:  # 2025: a disconnect is not a cancel; notifications/cancelled is
            result = await state.inflight.run(inflight.key(principal(request).subject, session.sid, rid), work)
        if isinstance(result, web.StreamResponse):
            return result
        return rpc_response(protocol.result(rid, protocol.with_result_type(result, era, msg.method)))
    except HttpReject as reject:
        return reject.response
    except RpcFailure as failure:
        if era == "handshake" and failure.code == protocol.METHOD_NOT_FOUND:
            # A handshake-era client reads HTTP 404 as "session gone" and re-initializes.
            failure.status = 200
        return endpoint.failure_response(rid, failure)
    except ClientGone:
        audit(request).error = "client disconnected; backend requests cancelled"
        return request.get(ANSWER_STREAM) or web.Response(status=499)
    except inflight.Cancelled:
        audit(request).error = "cancelled by the client (notifications/cancelled)"
        return await _unanswered(request)
    except Exception as exc:
        mapped = to_gateway_error(exc)
        if mapped is None:
            raise
        audit(request).error = f"{mapped.code}: {mapped.message}"
        return rpc_response(protocol.error(rid, protocol.INTERNAL_ERROR, mapped.message), mapped.status)


def _initialize(request: web.Request, state: McpState, msg: protocol.Message) -> web.Response:
    version = protocol.negotiate(msg.params.get("protocolVersion"))
    # The agent's capabilities ride in the session, so its backend sessions declare the same (pool).
    caps = canonical_capabilities(msg.params.get("capabilities"))
    token, _ = state.codec.mint(principal(request).subject, version, capabilities=caps)
    state.metrics.sessions_opened.labels(ENDPOINT).inc()
    state.metrics.sessions_open.labels(ENDPOINT).inc()
    body = {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO,
            "instructions": "Tools of several MCP servers, named {server}__{tool}; unprefixed tools run on every "
                            "server offering them."}
    return rpc_response(protocol.result(msg.id, body), headers={H_SESSION: token})


async def _answer(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Any:
    method, params = msg.method, msg.params
    if method == "ping":
        return {}
    if method == "server/discover":
        return {"supportedVersions": list(protocol.MODERN_VERSIONS), "capabilities": CAPABILITIES,
                "_meta": {"io.modelcontextprotocol/serverInfo": SERVER_INFO}}
    if method == "logging/setLevel":
        return {}
    if method == "tools/list":
        return await _list_tools(request, state, params)
    if method == "tools/call":
        return await _call_tool(request, state, msg, era)
    if method in ("prompts/list", "resources/list", "resources/templates/list"):
        return await items.list_named(request, state, method, params)
    if method == "prompts/get":
        return await items.get_prompt(request, state, msg, era)
    if method == "resources/read":
        return await items.read_resource(request, state, msg, era)
    if method in ("resources/subscribe", "resources/unsubscribe"):
        return await subs.subscribe(request, state, msg, era)
    if method == "completion/complete":
        return await items.complete(request, state, msg)
    if method == "subscriptions/listen" and era == "modern":
        return await _listen(request, state, msg)
    raise RpcFailure(protocol.METHOD_NOT_FOUND, f"Method not found: {method}")


async def _tool_lists(request: web.Request, state: McpState) -> dict[str, list[dict[str, Any]]]:
    return await fanout.gather_lists(request.app[UPSTREAM], state.lists, servers_of(request), "tools/list",
                                     on_error(state), caller(request))


async def _listen(request: web.Request, state: McpState, msg: protocol.Message) -> web.StreamResponse:
    """`subscriptions/listen`: acknowledge what is honoured (list changes, permitted resource URIs), then watch."""
    raw = msg.params.get("notifications")
    wanted = raw if isinstance(raw, dict) else {}
    honoured: dict[str, Any] = listen.honoured(wanted)
    key, uris = await subs.listen_resources(request, state, wanted.get("resourceSubscriptions"))
    if uris:
        honoured["resourceSubscriptions"] = uris
    ack = {"jsonrpc": "2.0", "method": "notifications/subscriptions/acknowledged",
           "params": {"notifications": honoured, "_meta": {listen.SUBSCRIPTION_ID: msg.id}}}
    try:
        return await _stream(request, state, [ack], msg.id, listen.kinds_of(honoured), key, None)
    finally:
        await state.hub.drop(key)  # a listen subscription lives as long as its stream


async def _stream(request: web.Request, state: McpState, first: list[dict[str, Any]], subscription: Any,
                  kinds: set[str], key: tuple[str, str], session: str | None) -> web.StreamResponse:
    refusal = state.streams.open(key[0], session)
    if refusal is not None:
        raise RpcFailure(protocol.INTERNAL_ERROR, refusal, status=429)
    try:
        return await _watch(request, state, first, subscription, kinds, key)
    finally:
        state.streams.close(key[0], session)


async def _watch(request: web.Request, state: McpState, first: list[dict[str, Any]], subscription: Any,
                 kinds: set[str], key: tuple[str, str]) -> web.StreamResponse:
    out = web.StreamResponse(headers=sse.SSE_HEADERS)
    drain, detach = subs.drainer(state, key, subscription)
    gauge = state.metrics.streams_open.labels(ENDPOINT)
    gauge.inc()
    try:
        await out.prepare(request)
        for message in first:
            await out.write(sse.encode(dumps_str(message)))

        async def snapshot() -> dict[str, str]:
            return await watched.snapshot(request, state, kinds)

        async with state.catalogs.subscribed():
            await listen.watch(request, out, snapshot, subscription, drain, state.catalogs.stamp)
    except ConnectionResetError:
        pass  # the client closed the stream
    finally:
        detach()
        gauge.dec()
    return out


async def _list_tools(request: web.Request, state: McpState, params: dict[str, Any]) -> dict[str, Any]:
    per_server = await _tool_lists(request, state)
    pairs = [(s, t["name"]) for s, tools in per_server.items() for t in tools if isinstance(t.get("name"), str)]
    allowed = await enforce.allowed_items(request, principal(request), "tools/list", pairs)
    tools = catalog.merge_tools(per_server, allowed, state.broadcast)
    page, nxt = catalog.paginate(tools, params.get("cursor"), state.page_size)
    audit(request).note(listed=len(tools), hidden=len(pairs) - len(allowed))
    return {"tools": page, **({"nextCursor": nxt} if nxt else {})}


async def _call_tool(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Any:
    public = enforce.target("tools/call", msg.params)
    raw_args = msg.params.get("arguments")
    arguments: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
    servers = {s.name: s for s in servers_of(request)}
    simple = naming.split_simple(public, servers)
    target: catalog.Target | None
    if simple is not None:
        target = catalog.Target(simple[1], (simple[0],))
    else:
        lists = await _tool_lists(request, state)
        names = {s: [t["name"] for t in tools if isinstance(t.get("name"), str)] for s, tools in lists.items()}
        visible = await unseen.visible_names(request, "tools/list", names)
        target = catalog.resolve_tool(public, {s: [t for t in lists[s] if t.get("name") in set(visible[s])]
                                               for s in lists}, state.broadcast)
    if target is None:
        # Decided as the name it spells first: "unknown" only for a caller who may call it.
        spelled = await unseen.decide_spelled(request, "tools/call", unseen.spelled_name(public),
                                              {"name": public, "arguments": arguments})
        if spelled is not None:
            return enforce.denial("tools/call", msg.id, spelled, era)["result"]
        # The spec's protocol error for an unknown tool (a name no enabled backend offers).
        raise RpcFailure(protocol.INVALID_PARAMS, f"Unknown tool: {public}", status=200)
    if target.broadcast:
        return await _broadcast(request, state, target, raw_args, servers, era)
    server = servers[target.servers[0]]
    params = {"name": target.tool, "arguments": arguments}
    decision = await enforce.check_call(request, principal(request), server.name, "tools/call", target.tool, params)
    if not decision.allowed:
        return enforce.denial("tools/call", msg.id, decision, era)["result"]
    await enforce.admit(request, server, target.tool, raw_args)
    # A 2026-07-28 retry answers an input_required result: its inputs go to the same backend.
    extra: dict[str, Any] = {k: msg.params[k] for k in ("_meta", "inputResponses", "requestState") if k in msg.params}
    return await calls.call_tool(request, state, server, {**params, **extra}, msg.id, era, ENDPOINT)


async def _broadcast(request: web.Request, state: McpState, target: catalog.Target, raw_args: Any,
                     servers: dict[str, Any], era: protocol.Era) -> dict[str, Any]:
    arguments: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
    info = audit(request)
    info.action, info.tool, info.parameters = "invoke_tool", target.tool, arguments
    from shared.authzen import tool_resource

    decisions = await request.app[POLICY].check_many(
        principal(request), [("invoke_tool", tool_resource(s, target.tool), arguments) for s in target.servers])
    call, denied = bc.split_by_decision(list(target.servers), [d.allowed for d in decisions],
                                        [d.reason for d in decisions])
    info.note(targets=list(target.servers), denied=sorted(denied))
    if not call:
        info.denied, info.decision = True, decisions[0]
        # One denial, as for a single target: the summary never names servers refused to the caller.
        return enforce.denial("tools/call", None, decisions[0], era)["result"]
    pool = request.app[UPSTREAM]
    deadline = float(getattr(request.app[SETTINGS], "broadcast_deadline", 30.0))
    refusals: dict[str, Refused] = {}

    async def one(name: str) -> Any:
        try:  # each target's own catalog and schema first (calls/admit.py)
            await admit(pool, request.app[SCHEMAS], servers[name], target.tool, raw_args)
        except Refused as exc:
            refusals[name] = exc
            raise
        return links.tool_result(name, result_or_error(await pool.request(
            servers[name], "tools/call", {"name": target.tool, "arguments": arguments}, caller(request))))

    results, errors = await bc.run_calls(call, one, timeouts={n: servers[n].timeout for n in call},
                                         deadline=deadline, describe_error=_describe)
    invalid = refused_everywhere(refusals, call)
    if invalid is not None:
        info.error = invalid.message
        raise enforce.as_rpc(invalid)
    # Counted over the servers called: the summary never names servers refused to the caller.
    return catalog.broadcast_result(target.tool, results, errors, len(call))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return exc.message
    if isinstance(exc, RpcFailure):
        return f"error {exc.code}: {exc.message}"
    if isinstance(exc, UpstreamError):
        return exc.message
    return type(exc).__name__


async def get(request: web.Request) -> web.StreamResponse:
    """A session's server→client stream: keep-alives and aggregated */list_changed (listen.py)."""
    state: McpState = request.app[MCP_STATE]
    audit(request).action = "mcp_stream"
    try:
        endpoint.check_transport(request, state, post=False)
        endpoint.require_stream_session(request)
        session = endpoint.open_session(request, state, None)
    except HttpReject as reject:
        return reject.response
    except RpcFailure as failure:
        return endpoint.failure_response(None, failure)
    # The session's resource subscriptions are delivered on each of its open GET streams.
    key = (principal(request).subject, session.sid)
    try:
        return await _stream(request, state, [], None, set(listen.FILTER_KEYS.values()), key, session.sid)
    except RpcFailure as failure:
        return endpoint.failure_response(None, failure)


async def delete(request: web.Request) -> web.Response:
    """End an aggregated session (every replica sharing the database refuses it from now on)."""
    state: McpState = request.app[MCP_STATE]
    audit(request).action = "mcp_session_end"
    try:
        endpoint.check_transport(request, state, post=False)
        session = endpoint.open_session(request, state, None)
    except HttpReject as reject:
        return reject.response
    except RpcFailure as failure:
        return endpoint.failure_response(None, failure)
    await state.revoke(session)
    await state.hub.drop((principal(request).subject, session.sid))
    state.metrics.sessions_open.labels(ENDPOINT).dec()
    return web.Response(status=200)


async def _unanswered(request: web.Request) -> web.StreamResponse:
    """End a cancelled request's answer without a JSON-RPC response (as the spec asks)."""
    out = request.get(ANSWER_STREAM)
    if out is None:
        return web.Response(status=200, headers=sse.SSE_HEADERS)
    with contextlib.suppress(ConnectionResetError):
        await out.write_eof()
    return out
