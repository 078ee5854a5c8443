"""Helpers shared by the `/mcp` handlers: enabled backends, backend answers, denials."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.keys import CALLER, PRINCIPAL, SERVERS
from gateway.mcp import protocol
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.sessions import Session
from gateway.mcp.state import McpState
from gateway.upstream.sessions import Caller

log = logging.getLogger(__name__)


def servers_of(request: web.Request) -> list[Any]:
    return list(request.app[SERVERS].enabled())


def remember_caller(request: web.Request, era: protocol.Era, params: Any, session: Session | None) -> None:
    """Record whom this request reaches backends for: the subject with its agent's capabilities
    (a 2025 agent's from its session, a 2026-07-28 agent's from the request's `_meta`)."""
    if session is not None:
        request[CALLER] = Caller(request[PRINCIPAL].subject, session.capabilities)
        return
    meta = params.get("_meta") if isinstance(params, dict) else None
    caps = meta.get(protocol.META_CAPABILITIES) if isinstance(meta, dict) and era == "modern" else None
    request[CALLER] = Caller.of(request[PRINCIPAL].subject, caps)


def caller(request: web.Request) -> Caller:
    """The request's upstream caller (the bare subject when no MCP handler recorded one)."""
    found = request.get(CALLER)
    return found if found is not None else Caller.of(request[PRINCIPAL].subject)


def on_error(state: McpState) -> Any:
    def record(server: Any, exc: Exception) -> None:
        state.metrics.upstream_errors.labels(server.name).inc()
        log.warning("backend left out of aggregated list", extra={"server": server.name, "error": str(exc)})

    return record


def result_or_error(response: dict[str, Any]) -> dict[str, Any]:
    if isinstance(response.get("error"), dict):
        err = response["error"]
        raise RpcFailure(int(err.get("code", protocol.INTERNAL_ERROR)), str(err.get("message", "backend error")),
                         err.get("data"), status=200)
    result = response.get("result")
    return dict(result) if isinstance(result, dict) else {}

