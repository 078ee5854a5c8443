"""Errors from talking to a backend.

    UpstreamError (server, message, status)     -> 502: unreachable, bad status, garbage answer
    ├── UpstreamTimeout (server)                -> 504: no answer within the server's timeout
    ├── BackendDisconnected (server, message)   -> 502: the connection closed before any answer
    ├── ResponseTooLarge (server, limit)        -> 502: a JSON body or SSE event past the cap
    ├── CallBudgetExceeded (server, limit)      -> 502: one call relayed more bytes than its budget
    ├── SubjectBusy (server, limit)             -> 503: the caller has too many requests on this backend
    └── UpstreamRpcError (server, code, message, data) -> the backend answered a JSON-RPC error

Messages never include credentials or response bodies beyond a short, safe excerpt.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import aiohttp

EXCERPT = 200


class UpstreamError(Exception):
    """A backend failed; `status` is the backend's HTTP status when there was one."""

    http_status = 502

    def __init__(self, server: str, message: str, status: int | None = None) -> None:
        super().__init__(f"backend {server}: {message}")
        self.server = server
        self.message = message
        self.status = status


class UpstreamTimeout(UpstreamError):
    """A backend did not answer within its timeout."""

    http_status = 504

    def __init__(self, server: str, timeout: float | None = None) -> None:
        detail = f"no answer within {timeout:g} s" if timeout else "timed out"
        super().__init__(server, detail)


class BackendDisconnected(UpstreamError):
    """The connection closed (or was reset) before the backend's answer began: an idempotent
    request may be sent again (a keep-alive connection to a backend that just restarted)."""


class _OverLimit(UpstreamError):
    """A limit of the gateway's was passed; the message names its setting, so an operator who hits
    it knows what to raise."""

    text = ""

    def __init__(self, server: str, limit: int, status: int | None = None) -> None:
        super().__init__(server, self.text.format(limit=limit), status)
        self.limit = limit


class ResponseTooLarge(_OverLimit):
    """A backend's answer (JSON body or one SSE event) exceeded the configured cap."""

    text = "response larger than {limit} bytes (MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES)"


class CallBudgetExceeded(_OverLimit):
    """Everything one call relayed (result, notifications, server→client requests) passed its budget."""

    text = "call relayed more than {limit} bytes (MCPGW_GATEWAY_MCP_MAX_CALL_BYTES); cancelled"


class SubjectBusy(_OverLimit):
    """One subject already has its share of a backend's concurrency and queue."""

    http_status = 503
    text = ("too many of your requests running or waiting on this backend (limit {limit}: "
            "MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY + MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE); retry later")


class UpstreamRpcError(UpstreamError):
    """The backend answered with a JSON-RPC error object."""

    def __init__(self, server: str, error: dict[str, Any], status: int | None = None) -> None:
        self.code = error.get("code")
        self.rpc_message = str(error.get("message", ""))
        self.data = error.get("data")
        super().__init__(server, f"error {self.code}: {self.rpc_message}", status)


async def status_error(server: str, resp: aiohttp.ClientResponse) -> UpstreamError:
    """A backend's 5xx as an UpstreamError carrying the JSON-RPC error message of its body, if any.

    Only a short printable excerpt of `error.message` is kept (the stdio bridge says why a server
    is unavailable this way); any other body is not read past 4 KiB and not repeated.
    """
    detail = ""
    if resp.content_type == "application/json":
        try:
            body = orjson.loads(await resp.content.read(4096))
            message = body["error"]["message"] if isinstance(body, dict) else None
        except Exception:  # an unreadable excerpt changes nothing: the status still says 5xx
            message = None
        if isinstance(message, str):
            detail = ": " + "".join(c for c in message[:EXCERPT] if c.isprintable())
    return UpstreamError(server, f"HTTP {resp.status}{detail}", resp.status)
