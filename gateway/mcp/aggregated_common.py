"""Helpers shared by the `/mcp` handlers: enabled backends, backend answers, denials."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from gateway.keys import SERVERS
from gateway.mcp import enforce, protocol
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState

log = logging.getLogger(__name__)


def servers_of(request: web.Request) -> list[Any]:
    return list(request.app[SERVERS].enabled())


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


def denied(msg: protocol.Message, decision: Any, era: protocol.Era) -> RpcFailure:
    err = enforce.denial(msg.method, msg.id, decision, era)["error"]
    return RpcFailure(err["code"], err["message"], status=200)
