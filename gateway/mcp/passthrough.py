"""`/servers/{name}/mcp`: one backend, relayed faithfully (headers by allowlist, SSE event by
event), but for its credential (added, masked in answers), its session id (wrapped in a gateway
session), guarded calls (decided first) and lists (filtered). A backend of the other era is reached
through the upstream pool (README.md).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import Any

from aiohttp import web

from gateway.calls import outcome, pipeline
from gateway.calls.admit import Refused
from gateway.calls.audit import audit
from gateway.calls.call import Call
from gateway.errors import Denied
from gateway.keys import CALLER, MCP_STATE, UPSTREAM
from gateway.masking import leaks, masked_response
from gateway.mcp import admission, endpoint, enforce, protocol
from gateway.mcp import params as mcp_params
from gateway.mcp.endpoint import agent_caller, principal, refused, rpc_response, session_gone
from gateway.mcp.protocol import H_SESSION, RpcFailure
from gateway.mcp.sealed_state import binding
from gateway.mcp.state import McpState
from gateway.mcp.streams import (
    ClientGone,
    Observer,
    Rewrite,
    forward_headers,
    masked_answer,
    relay_answer,
    until_disconnect,
)
from gateway.registry import ServerConfig
from gateway.upstream import codec
from gateway.upstream.client import LEGACY
from gateway.upstream.errors import status_error
from gateway.upstream.sender import LISTEN, answer_in, read_capped
from gateway.upstream.sessions import Caller, canonical_capabilities
from shared.jsonutil import dumps

log = logging.getLogger(__name__)
ENDPOINT = "passthrough"


async def post(request: web.Request) -> web.StreamResponse:
    """One client message to the backend."""
    state: McpState = request.app[MCP_STATE]
    rid, method = None, ""
    era: protocol.Era = "modern"
    try:
        msg, era = await endpoint.read_post(request, state)
        rid, method = msg.id, msg.method
        plan, call, verdict, checked, server = await enforce.passthrough_target(request, msg)
        state.metrics.message(ENDPOINT, msg, era)
        audit(request).mcp_server = server.name
        protocol.check_headers(msg, request.headers, era)
        # The agent's caller: what it declared at initialize (sealed in its session) or in `_meta`.
        # Admission checks a call against the catalog THIS caller lists: a backend may offer a tool
        # only to clients declaring a capability (server-everything's sampling and elicitation tools).
        request[CALLER] = agent_caller(principal(request).subject, era, msg.params)
        if era == "handshake" and not (msg.kind == "request" and msg.method == "initialize"):
            session = endpoint.open_session(request, state, server.name)
            upstream_session, bridged = session.upstream_id, session.bridged
            request[CALLER] = Caller(principal(request).subject, session.capabilities)
        else:
            upstream_session, bridged = None, request.app[UPSTREAM].era(server) == LEGACY
        refusal = None if call is not None else enforce.plan_refusal(msg, era, plan, checked)
        if refusal is not None:
            return refusal
        if msg.kind == "request" and msg.method == "initialize":
            return await _initialize(request, state, server, msg)
        if msg.kind != "request":
            # 2026-07-28 defines no client notifications (cancel = close the stream); a backend that
            # honoured `notifications/cancelled` by a client-chosen id would let one caller cancel
            # another's request: acknowledged and dropped, as the SDK's own server does.
            if bridged or (era == "modern" and msg.kind == "notification"):
                return endpoint.accepted()
            return await _forward_notification(request, server, msg, upstream_session, era)
        if "requestState" in msg.params:  # honoured only as sealed for this caller's same call
            params = state.seals.unsealed(msg.params, _bound(request, server, msg))  # else −32602, nothing sent
            msg = protocol.Message(msg.kind, {**msg.body, "params": params})
        if call is None:
            return await _forward(request, state, msg, era, upstream_session, bridged, None, server)
        # A call's body goes through as decided: the gateway's own serialisation of the message it
        # parsed (never the raw bytes: a key named twice reaches the backend once, as decided), so the
        # tool must be in the catalog exactly and the arguments must fit its schema as sent (calls/admit.py).
        # Admitted against the catalog the caller's own backend session lists.
        call = dataclasses.replace(call, caller=request[CALLER])
        forward = functools.partial(_forward, request, state, msg, era, upstream_session, bridged, call)
        return await pipeline.run(request, call, lambda _: server, forward, verdict)
    except (Denied, Refused) as exc:  # refused by the call pipeline: nothing was forwarded
        return rpc_response(enforce.refusal(method, rid, exc, era))
    except ClientGone:
        audit(request).error = "client disconnected; backend request cancelled"
        return web.Response(status=499)
    except Exception as exc:
        return refused(request, exc, rid, request.match_info["name"])


async def _forward(request: web.Request, state: McpState, msg: protocol.Message, era: protocol.Era,
                   upstream_session: str | None, bridged: bool, call: Call | None,
                   server: ServerConfig) -> web.StreamResponse:
    """Passthrough's forward: the message relayed raw (or through the pool to a bridged backend);
    a call's answer is judged on the way (calls/outcome.py)."""
    seen = outcome.observer(request, call, server.name)
    if bridged:  # the pool takes the caller's turn itself
        work = _via_pool(request, server, msg, era, seen)
        return await (until_disconnect(request, work) if era == "modern" else work)
    relay = functools.partial(_relay, request, state, server, msg, era, upstream_session,
                              _param_headers(request, call, server, msg, era), seen)
    who = principal(request).subject
    if msg.method == LISTEN:  # a standing stream: bounded by the streams' pool and the subject's streams
        with endpoint.stream_slot(state, who, None):
            return await until_disconnect(request, relay())
    # One subject's relayed requests share its lane on this backend (upstream/fairness.py).
    async with request.app[UPSTREAM].turn(server, Caller.of(who)):
        return await (until_disconnect(request, relay()) if era == "modern" else relay())


def _headers(request: web.Request, msg: protocol.Message, era: protocol.Era, upstream_session: str | None,
             extra: dict[str, str] | None = None) -> dict[str, str]:
    """Headers for the backend: the allowlist, and routing headers rebuilt from the checked body (modern era)."""
    headers = forward_headers(request.headers, upstream_session)
    if era == "modern":
        headers.update(protocol.routing_headers(msg))
        headers.update(extra or {})
    return headers


async def _initialize(request: web.Request, state: McpState, server: ServerConfig, msg: protocol.Message) -> web.StreamResponse:
    headers = forward_headers(request.headers, None)
    resp = await request.app[UPSTREAM].send(server, "POST", headers, msg.body)
    forms = request.app[UPSTREAM].credentials.forms(server)
    async with resp:
        if resp.status >= 500:  # its reason (a bridge's full streams' pool names the setting), masked
            raise await status_error(server.name, resp, forms)
        upstream_session = resp.headers.get(H_SESSION)
        raw = await read_capped(resp, server.name, state.settings.mcp_max_response_bytes)
        answer = answer_in(raw, resp.content_type, msg.id)
        status, ctype = resp.status, resp.content_type
    if forms and isinstance(answer, dict):
        trace = leaks(raw, forms)  # anywhere in the body (a notification before the answer too)
        if (masked := masked_response(answer, forms, trace=trace)) is not answer or trace:
            answer, raw, ctype = masked, dumps(masked), "application/json"  # masked: the answer alone
    result = answer.get("result") if isinstance(answer, dict) else None
    who = principal(request).subject
    if status == 200 and isinstance(result, dict):
        version = protocol.negotiate(result.get("protocolVersion"))
        token = state.mint(ENDPOINT, who, version, server=server.name, upstream_id=upstream_session,
                           capabilities=canonical_capabilities(msg.params.get("capabilities")))
        return web.Response(body=raw, status=200, headers={H_SESSION: token}, content_type=ctype)
    if status == 200 and isinstance(answer, dict) and "error" in answer:
        return web.Response(body=raw, status=200, content_type=ctype)  # the backend's own refusal
    if 400 <= status < 500:
        # A backend that refuses the handshake speaks only 2026-07-28: bridge through the pool.
        version = protocol.negotiate(msg.params.get("protocolVersion"))
        token = state.mint(ENDPOINT, who, version, server=server.name, bridged=True)
        body = {"protocolVersion": version, "capabilities": {"tools": {}, "resources": {}, "prompts": {}},
                "serverInfo": {"name": server.name, "version": "bridged by mcpgw"}}
        return rpc_response(protocol.result(msg.id, body), headers={H_SESSION: token})
    raise RpcFailure(protocol.INTERNAL_ERROR, f"backend '{server.name}' failed to initialize (HTTP {status})",
                     status=502)


async def _forward_notification(request: web.Request, server: ServerConfig, msg: protocol.Message,
                                upstream_session: str | None, era: protocol.Era) -> web.Response:
    headers = _headers(request, msg, era, upstream_session)
    resp = await request.app[UPSTREAM].send(server, "POST", headers, msg.body)
    async with resp:
        raw = await read_capped(resp, server.name, request.app[MCP_STATE].settings.mcp_max_response_bytes)
        if resp.status >= 400:
            gone = upstream_session is not None and session_refused(resp.status, raw)
            return web.Response(status=404 if gone else 502)
    return endpoint.accepted()


async def _relay(request: web.Request, state: McpState, server: ServerConfig, msg: protocol.Message,
                 era: protocol.Era, upstream_session: str | None, extra: dict[str, str],
                 seen: Observer | None) -> web.StreamResponse:
    headers = _headers(request, msg, era, upstream_session, extra)
    forms = request.app[UPSTREAM].credentials.forms(server)  # the backend's own credential, masked in its answer
    resp = await request.app[UPSTREAM].send(server, "POST", headers, msg.body)
    async with resp:
        if resp.status >= 500:
            raise await status_error(server.name, resp, forms)
        refused = resp.status in (400, 404) and bool(upstream_session)  # the session, or else the message?
        if refused or (era == "modern" and resp.status == 400 and resp.content_type == endpoint.JSON):
            raw = await read_capped(resp, server.name, state.settings.mcp_max_response_bytes)
            if refused and session_refused(resp.status, raw):
                raise session_gone()
            if not refused and _legacy_refusal(raw):
                # The backend only knows the handshake era: the pool speaks that to it.
                return await _via_pool(request, server, msg, era)
            return web.Response(body=masked_answer(raw, forms), status=resp.status, content_type=resp.content_type)
        rewrite = _rewrite(request, state, server, msg, era)
        cancel = _canceller(request, server, msg, upstream_session) if upstream_session else None
        return await relay_answer(request, state, ENDPOINT, resp, msg.id, rewrite, server.name, cancel,
                                  idle_limit=server.timeout, observe=seen, forms=forms)


def _bound(request: web.Request, server: ServerConfig, msg: protocol.Message) -> bytes:
    return binding(principal(request).subject, server.name, msg.method, msg.params)


def _rewrite(request: web.Request, state: McpState, server: ServerConfig, msg: protocol.Message,
             era: protocol.Era) -> Rewrite | None:
    """Lists filtered for the caller; a 2026-07-28 input_required's requestState sealed for this call."""
    if msg.method in admission.LISTS:
        return functools.partial(enforce.filter_result, request, principal(request), server.name, msg.method)
    if era != "modern" or msg.kind != "request":
        return None

    async def sealed(result: dict[str, Any]) -> dict[str, Any]:
        return state.seals.result(result, lambda: _bound(request, server, msg))

    return sealed


def _canceller(request: web.Request, server: ServerConfig, msg: protocol.Message, upstream_session: str) -> Any:
    """Send a 2025-era backend `notifications/cancelled` for `msg` in the client's session (best effort)."""
    async def cancel() -> None:
        # forward_headers never carries the client's Mcp-Method/Mcp-Name/Mcp-Param-* (rebuilt per message).
        headers = forward_headers(request.headers, upstream_session)
        note = {"jsonrpc": "2.0", "method": "notifications/cancelled",
                "params": {"requestId": msg.id, "reason": "call exceeded the gateway's byte budget"}}
        try:
            resp = await request.app[UPSTREAM].send(server, "POST", headers, note)
            resp.release()
        except Exception as exc:  # noqa: BLE001 - the call is over either way; the cancel is a courtesy
            log.debug("cancel notification failed", extra={"server": server.name, "error": str(exc)})

    return cancel


def session_refused(status: int, raw: bytes) -> bool:
    """A backend's 400/404 to a message in its session, refusing the session (codec.session_refused)."""
    return codec.session_refused(status, codec.loads_or_none(raw))


def _legacy_refusal(raw: bytes) -> bool:
    answer = answer_in(raw, endpoint.JSON, None)
    err = answer.get("error") if isinstance(answer, dict) else None
    code = err.get("code") if isinstance(err, dict) else None
    return code not in (protocol.HEADER_MISMATCH, protocol.UNSUPPORTED_VERSION, protocol.INVALID_PARAMS,
                        protocol.METHOD_NOT_FOUND)


async def _via_pool(request: web.Request, server: ServerConfig, msg: protocol.Message, era: protocol.Era,
                    seen: Observer | None = None) -> web.Response:
    if msg.method == "server/discover":
        return rpc_response(protocol.result(msg.id, await _discovered(request, server)))
    params = protocol.without_meta(msg.params)
    response = await request.app[UPSTREAM].request(server, msg.method, params or None, request[CALLER])  # masked
    if seen is not None:
        seen(response)
    if "error" in response:
        return rpc_response({"jsonrpc": "2.0", "id": msg.id, "error": response["error"]})
    raw = response.get("result")
    result: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if msg.method in admission.LISTS:
        result = await enforce.filter_result(request, principal(request), server.name, msg.method, result)
    return rpc_response(protocol.result(msg.id, protocol.with_result_type(result, era, msg.method)))


async def _discovered(request: web.Request, server: ServerConfig) -> dict[str, Any]:
    """A 2026-07-28 discover result for a handshake-era backend, from its initialize answer."""
    client = request.app[UPSTREAM].client(server)
    await client.ensure_era()
    info = client.server_info
    result = protocol.discover_result(info.get("capabilities") or {}, info.get("serverInfo") or {},
                                      info.get("instructions"))
    return protocol.with_result_type(result, "modern", "server/discover")


def _param_headers(request: web.Request, call: Call | None, server: ServerConfig, msg: protocol.Message,
                   era: protocol.Era) -> dict[str, str]:
    """`Mcp-Param-*` to forward: none unless the client sent some; then checked against, and rebuilt
    from, the body, by the tool definition admission found (calls/admit.py: no second lookup)."""
    client = mcp_params.sent(request.headers)
    if not client or era != "modern" or msg.method != "tools/call":
        return {}  # nothing to mirror (a 2025-era backend reads no Mcp-Param-* header)
    tool = call.admitted.get(server.name) if call is not None else None
    if tool is None:
        raise RpcFailure(protocol.HEADER_MISMATCH, "Mcp-Param-* headers sent for a tool the backend does not list")
    wanted = mcp_params.expected(tool.get("inputSchema"), msg.params.get("arguments"))
    mcp_params.check(client, wanted)
    return wanted
