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

from gateway import __version__
from gateway.calls import pipeline
from gateway.calls.admit import Refused
from gateway.calls.audit import audit
from gateway.errors import Denied
from gateway.keys import ANSWER_STREAM, MCP_STATE
from gateway.mcp import (
    admission,
    bridge,
    calls,
    catalog,
    endpoint,
    enforce,
    inflight,
    links,
    listen,
    methods,
    naming,
    peer_link,
    protocol,
)
from gateway.mcp import aggregated_items as items
from gateway.mcp import aggregated_subs as subs
from gateway.mcp.aggregated_items import servers_of, visible_lists
from gateway.mcp.endpoint import (
    HttpReject,
    principal,
    refused,
    remember_caller,
    rpc_response,
    session_request,
)
from gateway.mcp.protocol import H_SESSION, RpcFailure
from gateway.mcp.sessions import Session
from gateway.mcp.state import McpState
from gateway.mcp.streams import ClientGone, until_disconnect
from gateway.registry import ServerConfig
from gateway.upstream import sse
from gateway.upstream.sessions import canonical_capabilities

log = logging.getLogger(__name__)
Answer = dict[str, Any] | web.StreamResponse  # a result, or the SSE answer already sent
ENDPOINT = "aggregated"
SERVER_INFO = {"name": "mcpgw", "title": "mcpgw MCP gateway", "version": __version__}
CAPABILITIES = {"tools": {"listChanged": True}, "prompts": {"listChanged": True},
                "resources": {"listChanged": True, "subscribe": True}, "completions": {}}


async def post(request: web.Request) -> web.StreamResponse:
    """One client message to the virtual server."""
    state: McpState = request.app[MCP_STATE]
    rid, method = None, ""
    era: protocol.Era = "modern"
    session = None
    try:
        msg, era = await endpoint.read_post(request, state)
        rid, method = msg.id, msg.method
        state.metrics.message(ENDPOINT, msg, era)
        if msg.kind == "notification" and msg.method not in methods.CLIENT_NOTIFICATIONS:
            methods.plan("", msg.kind, msg.method, msg.params)  # a request method without an id: 400
        protocol.check_headers(msg, request.headers, era)
        if era == "handshake":
            if msg.kind == "request" and msg.method == "initialize":
                return _initialize(request, state, msg)
            session = endpoint.open_session(request, state, None)
        remember_caller(request, era, msg.params, session)
        if msg.kind == "response":
            if era != "handshake":  # its answers come in a retry's inputResponses, decided again (bridge.py)
                raise RpcFailure(protocol.INVALID_REQUEST, "a 2026-07-28 agent answers a server request by "
                                 "retrying its call with inputResponses", status=400)
            # An agent's answer to a backend's sampling / elicitation / roots request (calls.py).
            if not state.pending.answer(principal(request).subject, msg.id, msg.body):
                await peer_link.answer_elsewhere(request, principal(request).subject, msg.id, msg.body)
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
    except RpcFailure as failure:
        if era == "handshake" and failure.code == protocol.METHOD_NOT_FOUND:
            # A handshake-era client reads HTTP 404 as "session gone" and re-initializes.
            failure.status = 200
        return endpoint.failure_response(rid, failure)
    except (Denied, Refused) as exc:  # refused by the call pipeline: nothing was forwarded
        return rpc_response(enforce.refusal(method, rid, exc, era))
    except ClientGone:
        audit(request).error = "client disconnected; backend requests cancelled"
        return request.get(ANSWER_STREAM) or web.Response(status=499)
    except inflight.Cancelled:
        audit(request).error = "cancelled by the client (notifications/cancelled)"
        return await _unanswered(request)
    except Exception as exc:
        return refused(request, exc, rid)


def _initialize(request: web.Request, state: McpState, msg: protocol.Message) -> web.Response:
    version = protocol.negotiate(msg.params.get("protocolVersion"))
    # The agent's capabilities ride in the session, so its backend sessions declare the same (pool).
    caps = canonical_capabilities(msg.params.get("capabilities"))
    token = state.mint(ENDPOINT, principal(request).subject, version, capabilities=caps)
    body = {"protocolVersion": version, "capabilities": CAPABILITIES, "serverInfo": SERVER_INFO,
            "instructions": "Tools of several MCP servers, named {server}__{tool}; unprefixed tools run on every "
                            "server offering them."}
    return rpc_response(protocol.result(msg.id, body), headers={H_SESSION: token})


async def _answer(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era) -> Answer:
    method, params = msg.method, msg.params
    if method in ("ping", "logging/setLevel"):  # a 2025 agent's log level: every level is asked upstream (calls.py)
        return {}
    if method == "server/discover":
        return protocol.discover_result(CAPABILITIES, SERVER_INFO)
    if method == "tools/call":
        # A retry continuing a call the gateway holds (bridge.py) is resolved and decided again like
        # any call: refused or failed before it is relayed, the held call ends.
        with bridge.claimed(request, state, msg.params, era) as turn:
            return await _call_tool(request, state, msg, era, turn)
    if method in admission.LISTS:
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
        return await subs.listen_stream(request, state, msg)
    raise RpcFailure(protocol.METHOD_NOT_FOUND, f"Method not found: {method}")


async def _call_tool(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era,
                     turn: bridge.Turn) -> Answer:
    public = methods.target(msg.params, "name")
    raw_args = msg.params.get("arguments")
    arguments: dict[str, Any] = raw_args if isinstance(raw_args, dict) else {}
    servers = servers_of(request)
    simple = naming.split_simple(public, servers)
    target: catalog.Target | None
    if simple is not None:
        target = catalog.Target(simple[1], (simple[0],))
    else:
        target = catalog.resolve_tool(public, await visible_lists(request, state, "tools/list"),
                                      state.settings.mcp_broadcast)
    if target is None:
        # Decided as the name it spells first: "unknown" only for a caller who may call it.
        await enforce.refuse_spelled(request, "tools/call", enforce.spelled_name(public), arguments)
        # The spec's protocol error for an unknown tool (a name no enabled backend offers).
        raise RpcFailure(protocol.INVALID_PARAMS, f"Unknown tool: {public}", status=200)
    if target.broadcast:
        return await _broadcast(request, target, raw_args, servers)
    call = enforce.call_of(request, "mcp", "tools/call", target.servers, target.tool, raw_args)
    # A 2026-07-28 retry answers an input_required result: its inputs go to the same backend.
    extra: dict[str, Any] = {k: msg.params[k] for k in ("_meta", "inputResponses", "requestState") if k in msg.params}
    params = {"name": target.tool, "arguments": arguments, **extra}
    return await pipeline.run(request, call, servers.__getitem__, lambda s: calls.call_tool(
        request, state, s, params, msg.id, era, ENDPOINT, turn))


async def _broadcast(request: web.Request, target: catalog.Target, raw_args: Any,
                     servers: dict[str, ServerConfig]) -> dict[str, Any]:
    call = enforce.call_of(request, "mcp_broadcast", "tools/call", target.servers, target.tool, raw_args,
                           broadcast=True)
    verdict = await pipeline.decide(request, call)
    if not verdict.allowed:
        # One denial, as for a single target: the summary never names servers refused to the caller.
        raise Denied(verdict.decision, "not permitted by policy")

    async def forward(server: ServerConfig) -> dict[str, Any]:
        return links.tool_result(server.name, await pipeline.forward_result(request, call, server))

    results, errors = await pipeline.many(request, call, servers, verdict.permitted, forward)
    # Counted over the servers called: the summary never names servers refused to the caller.
    return catalog.broadcast_result(target.tool, results, errors, len(verdict.permitted))


def _session(request: web.Request, state: McpState, action: str) -> Session:
    session_request(request, state, action)
    return endpoint.open_session(request, state, None)


async def get(request: web.Request) -> web.StreamResponse:
    """A session's server→client stream: keep-alives and aggregated */list_changed (listen.py)."""
    state: McpState = request.app[MCP_STATE]
    try:
        session = _session(request, state, "mcp_stream")
        # The session's resource subscriptions are delivered on each of its open GET streams.
        key = (principal(request).subject, session.sid)
        return await subs.stream(request, state, [], None, set(listen.FILTER_KEYS.values()), key, session.sid)
    except (HttpReject, RpcFailure) as exc:
        return refused(request, exc)


async def delete(request: web.Request) -> web.Response:
    """End an aggregated session (every replica sharing the database refuses it from now on)."""
    state: McpState = request.app[MCP_STATE]
    try:
        session = _session(request, state, "mcp_session_end")
    except (HttpReject, RpcFailure) as exc:
        return refused(request, exc)
    await state.end(ENDPOINT, session)
    await state.hub.drop((principal(request).subject, session.sid))
    return web.Response(status=200)


async def _unanswered(request: web.Request) -> web.StreamResponse:
    """End a cancelled request's answer without a JSON-RPC response (as the spec asks)."""
    out = request.get(ANSWER_STREAM)
    if out is None:
        return web.Response(status=200, headers=sse.SSE_HEADERS)
    with contextlib.suppress(ConnectionResetError):
        await out.write_eof()
    return out
