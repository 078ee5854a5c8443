"""Helpers shared by the MCP handlers (`/mcp` and passthrough): enabled backends, whom backends are
asked for, backend answers, and the one mapping of a failure to the JSON-RPC error they answer."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.calls.audit import audit
from gateway.errors import to_gateway_error
from gateway.keys import CALLER, MCP_STATE, PRINCIPAL, SERVERS, UPSTREAM
from gateway.mcp import catalog, endpoint, fanout, methods, protocol, unseen
from gateway.mcp.endpoint import HttpReject, rpc_response
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.sessions import Session
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig
from gateway.upstream.sessions import Caller

log = logging.getLogger(__name__)


def servers_of(request: web.Request) -> dict[str, ServerConfig]:
    """The enabled backends by name."""
    return {s.name: s for s in request.app[SERVERS].enabled()}


async def backend_lists(request: web.Request, state: McpState, method: str) -> dict[str, list[dict[str, Any]]]:
    """Every enabled backend's `method` list as the caller's backend sessions see it (cached; a failing
    backend is left out and counted)."""
    def left_out(server: ServerConfig, exc: Exception) -> None:
        state.metrics.upstream_errors.labels(server.name).inc()
        log.warning("backend left out of aggregated list", extra={"server": server.name, "error": str(exc)})

    return await fanout.gather_lists(request.app[UPSTREAM], state.lists, list(servers_of(request).values()), method,
                                     left_out, caller(request))


async def visible_catalog(request: web.Request, state: McpState,
                          method: str) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[str]]]:
    """Every backend's `method` list, and per server the names in it the caller may use."""
    lists = await backend_lists(request, state, method)
    names = {s: [i["name"] for i in items if isinstance(i.get("name"), str)] for s, items in lists.items()}
    return lists, await unseen.visible_names(request, method, names)


def locate_resource(request: web.Request, uri: str) -> tuple[ServerConfig, str]:
    """The enabled server and backend URI an aggregated URI names (−32002 when none; normal form only)."""
    servers = servers_of(request)
    found = catalog.unwrap_uri(uri, servers)
    if found is None:
        raise RpcFailure(-32002, f"Resource not found: {uri}", {"uri": uri}, status=200)
    methods.target({"uri": found[1]}, "uri", uri=True)  # decided and forwarded only in normal form
    return servers[found[0]], found[1]


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
    GET must name its session."""
    audit(request).action = action
    endpoint.check_transport(request, state, post=False)
    if request.method == "GET":
        endpoint.require_stream_session(request)


def answer_failure(request: web.Request, rid: protocol.RequestId, exc: Exception, server: str | None = None) -> web.Response:
    """A failure as the JSON-RPC error (and HTTP status: 502/503/504…) an MCP endpoint answers, audited,
    and counted against `server` when the backend failed; not one of ours (a bug: 500) is re-raised."""
    mapped = to_gateway_error(exc)
    if mapped is None:
        raise exc
    if server and mapped.status in (502, 504):
        request.app[MCP_STATE].metrics.upstream_errors.labels(server).inc()
    audit(request).error = f"{mapped.code}: {mapped.message}"
    return rpc_response(protocol.error(rid, protocol.INTERNAL_ERROR, mapped.message), mapped.status)


def refused(request: web.Request, exc: Exception, server: str | None = None) -> web.Response:
    """The answer to a GET/DELETE that failed: a transport refusal, a JSON-RPC error or an upstream failure."""
    if isinstance(exc, HttpReject):
        return exc.response
    if isinstance(exc, RpcFailure):
        return endpoint.failure_response(None, exc)
    return answer_failure(request, None, exc, server)
