"""Edge refusals (headers, browser, JSON limits: before any handler runs) in the shape the caller
reads: JSON-RPC on the MCP endpoints, the REST body elsewhere."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from gateway.edge import is_mcp_path
from gateway.keys import AUDIT_INFO
from shared.jsonutil import dumps

INVALID_REQUEST = -32600  # JSON-RPC "Invalid Request" (the code endpoint.plain_error uses)


def record(request: web.Request, message: str) -> None:
    """The request's audit error, unless an earlier step named one."""
    info = request.get(AUDIT_INFO)
    if info is not None and info.error is None:
        info.error = message


def rpc_refusal(status: int, message: str, rid: object = None) -> web.Response:
    """A JSON-RPC Invalid Request answer to request `rid` (None when unknown)."""
    body = {"jsonrpc": "2.0", "id": rid, "error": {"code": INVALID_REQUEST, "message": message}}
    return web.Response(body=dumps(body), status=status, content_type="application/json")


def error_body(
    status: int, code: str, message: str, headers: dict[str, str] | None = None,
    details: Mapping[str, object] | None = None,
) -> web.Response:
    """A JSON error response; `details` add members to the error object (never code/message)."""
    extra = {k: v for k, v in (details or {}).items() if k not in ("code", "message")}
    body = dumps({"error": {"code": code, "message": message, **extra}})
    return web.Response(body=body, status=status, headers=headers, content_type="application/json")


def refuse(request: web.Request, status: int, code: str, message: str) -> web.Response:
    """A JSON refusal the caller's protocol can read; the message is recorded for audit."""
    record(request, f"{code}: {message}")
    response = rpc_refusal(status, message) if is_mcp_path(request.path) else error_body(status, code, message)
    if status in (400, 431):
        response.force_close()  # the rest of the connection's bytes cannot be trusted either
    return response
