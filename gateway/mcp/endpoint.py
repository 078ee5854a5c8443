"""What both MCP endpoints do before and after their own work: transport checks, sessions, whom
backends are asked for, answers; every failure is answered as a JSON-RPC error (MCP clients read
those, not the REST error body) with the HTTP status the spec gives it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from aiohttp import hdrs, web

from gateway.calls.audit import audit
from gateway.errors import to_gateway_error
from gateway.keys import CALLER, JSON_BODY, MCP_STATE, PRINCIPAL
from gateway.mcp import oauth_metadata, protocol
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.sessions import Session, SessionError
from gateway.mcp.state import McpState
from gateway.upstream.sessions import Caller
from shared.auth import Principal
from shared.jsonutil import dumps, loads

JSON = "application/json"
SESSION_REQUIRED = "Bad Request: Mcp-Session-Id header is required"


class HttpReject(Exception):
    """Stop with this HTTP response (not a JSON-RPC exchange: 403/406/405 transport refusals)."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def rpc_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    """A JSON-RPC message as an HTTP response."""
    return web.Response(body=dumps(payload), status=status, headers=dict(headers or {}), content_type=JSON)


def failure_response(rid: protocol.RequestId, failure: RpcFailure) -> web.Response:
    """A JSON-RPC error response with its HTTP status."""
    return rpc_response(protocol.error(rid, failure.code, failure.message, failure.data), failure.status)


def plain_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """A transport-level refusal; still a JSON-RPC error body, which every MCP client can read."""
    return rpc_response(protocol.error(None, protocol.INVALID_REQUEST, message), status, headers)


def check_transport(request: web.Request, state: McpState, *, post: bool) -> None:
    """Origin allowlist (403, DNS rebinding), Accept (406) and required scopes (403)."""
    headers = request.headers
    origin = headers.get(hdrs.ORIGIN)
    # No Origin (every non-browser client) always passes: skip computing request.host for it.
    if origin is not None and not protocol.origin_allowed(origin, state.settings.mcp_allowed_origins, request.host):
        raise HttpReject(plain_error(403, "Origin not allowed"))
    accept = headers.get(hdrs.ACCEPT)
    if post and not protocol.accepts_post(accept):
        raise HttpReject(plain_error(406, "Accept must include both application/json and text/event-stream"))
    if not post and request.method == "GET" and not protocol.accepts_sse(accept):
        raise HttpReject(plain_error(406, "Accept must include text/event-stream"))
    if not state.settings.mcp_required_scopes:
        return
    missing = oauth_metadata.missing_scopes(principal(request).scopes, state.settings.mcp_required_scopes)
    if missing:
        challenge = oauth_metadata.challenge(
            metadata_url(request, state), error="insufficient_scope",
            description="the token lacks a scope these endpoints require", scope=state.settings.mcp_required_scopes,
        )
        raise HttpReject(plain_error(403, "insufficient_scope", {"WWW-Authenticate": challenge}))


@contextlib.contextmanager
def stream_slot(state: McpState, subject: str, session: str | None) -> Iterator[None]:
    """Hold one open-stream slot while the stream lives; 429 past the subject's or session's limit."""
    refusal = state.streams.open(subject, session)
    if refusal is not None:
        raise RpcFailure(protocol.INTERNAL_ERROR, refusal, status=429)
    try:
        yield
    finally:
        state.streams.close(subject, session)


def principal(request: web.Request) -> Principal:
    """The authenticated caller (the auth middleware guarantees one)."""
    return request[PRINCIPAL]


def base_url(request: web.Request, state: McpState) -> str:
    """The gateway's external base URL: configured, else as this request reached us."""
    return (state.settings.public_url or f"{request.scheme}://{request.host}").rstrip("/")


def metadata_url(request: web.Request, state: McpState) -> str:
    """Protected-resource metadata URL for the endpoint this request addressed."""
    return oauth_metadata.metadata_url(base_url(request, state), request.path)


async def read_post(request: web.Request, state: McpState) -> tuple[protocol.Message, protocol.Era]:
    """A POST's transport checked and its body read as one JSON-RPC message (−32700 / −32600
    otherwise), with its era; audited as its method."""
    check_transport(request, state, post=True)
    ctype = request.headers.get(hdrs.CONTENT_TYPE, "")
    if ctype != JSON and ctype.split(";")[0].strip().lower() != JSON:
        raise RpcFailure(protocol.INVALID_REQUEST, "Content-Type must be application/json", status=415)
    if JSON_BODY in request:  # parsed (and its shape checked) by the JSON limits middleware
        msg = protocol.parse_message(request[JSON_BODY])
    else:
        raw = await request.read()
        if len(raw) > state.settings.max_body_bytes:
            raise RpcFailure(protocol.INVALID_REQUEST, "request body too large", status=413)
        try:
            body = loads(raw)
        except ValueError:
            raise RpcFailure(protocol.PARSE_ERROR, "Parse error: body is not valid JSON") from None
        msg = protocol.parse_message(body)
    audit(request).action = msg.method or "response"
    return msg, protocol.detect_era(msg, request.headers)


def open_session(request: web.Request, state: McpState, server: str | None) -> Session:
    """The caller's session from `Mcp-Session-Id`: 400 without one, 404 if unknown to this caller."""
    token = request.headers.get(protocol.H_SESSION)
    if not token:
        raise RpcFailure(protocol.INVALID_REQUEST, SESSION_REQUIRED, status=400)
    try:
        session = state.codec.open(token, principal(request).subject, server=server)
    except SessionError:
        raise session_gone() from None
    version = request.headers.get(protocol.H_VERSION)  # after initialize: absent means 2025-03-26
    if version is not None and version not in protocol.HANDSHAKE_VERSIONS:
        raise RpcFailure(protocol.INVALID_REQUEST, f"unsupported {protocol.H_VERSION}: {version}; supported: "
                         f"{', '.join(protocol.HANDSHAKE_VERSIONS)}", status=400)
    return session


def session_gone() -> RpcFailure:
    """An unknown session, or one the backend forgot: the agent must initialize again (docs/mcp.md)."""
    return RpcFailure(protocol.INVALID_REQUEST, "Session not found", status=404)


def accepted() -> web.Response:
    """202 for notifications and client responses."""
    return web.Response(status=202)


def remember_caller(request: web.Request, era: protocol.Era, params: Any, session: Session | None) -> None:
    """Record whom this request reaches backends for: the subject with its agent's capabilities
    (a 2025 agent's from its session, a 2026-07-28 agent's from the request's `_meta`)."""
    subject = request[PRINCIPAL].subject
    request[CALLER] = (Caller(subject, session.capabilities, handshake=True) if session is not None
                       else agent_caller(subject, era, params))


def agent_caller(subject: str, era: protocol.Era, params: Any) -> Caller:
    """`subject` declaring upstream what its agent declares in a 2026-07-28 request's `_meta`."""
    meta = params.get("_meta") if isinstance(params, dict) else None
    caps = meta.get(protocol.META_CAPABILITIES) if isinstance(meta, dict) and era == "modern" else None
    return Caller.of(subject, caps)


def caller(request: web.Request) -> Caller:
    """The request's upstream caller (the bare subject when no MCP handler recorded one)."""
    found = request.get(CALLER)
    return found if found is not None else Caller.of(request[PRINCIPAL].subject)


def result_or_error(response: dict[str, Any]) -> dict[str, Any]:
    if isinstance(response.get("error"), dict):
        err = response["error"]
        raise RpcFailure(int(err.get("code", protocol.INTERNAL_ERROR)), str(err.get("message", "backend error")),
                         err.get("data"), status=200)
    result = response.get("result")
    return dict(result) if isinstance(result, dict) else {}


def session_request(request: web.Request, state: McpState, action: str) -> None:
    """A GET or DELETE on an MCP endpoint: audited as `action`, its transport checked (HttpReject); a
    GET without `Mcp-Session-Id` is a 400 for a handshake-era client, else a 405 (2026-07-28 has no GET stream)."""
    audit(request).action = action
    check_transport(request, state, post=False)
    if request.method != "GET" or request.headers.get(protocol.H_SESSION):
        return
    if request.headers.get(protocol.H_VERSION) in protocol.HANDSHAKE_VERSIONS:
        raise RpcFailure(protocol.INVALID_REQUEST, SESSION_REQUIRED, status=400)
    raise HttpReject(web.Response(status=405, headers={"Allow": "POST, DELETE"}))


def refused(request: web.Request, exc: Exception, rid: protocol.RequestId = None,
            server: str | None = None) -> web.Response:
    """The answer to a failed MCP request: a transport refusal, a JSON-RPC error, or a failure as the
    JSON-RPC error (and HTTP status: 502/503/504…) an MCP endpoint answers, audited and counted against
    `server` when the backend failed; not one of ours (a bug: 500) is re-raised."""
    if isinstance(exc, HttpReject):
        return exc.response
    if isinstance(exc, RpcFailure):
        return failure_response(rid, exc)
    mapped = to_gateway_error(exc)
    if mapped is None:
        raise exc
    if server and mapped.status in (502, 504):
        request.app[MCP_STATE].metrics.upstream_errors.labels(server).inc()
    audit(request).error = f"{mapped.code}: {mapped.message}"
    return rpc_response(protocol.error(rid, protocol.INTERNAL_ERROR, mapped.message), mapped.status)
