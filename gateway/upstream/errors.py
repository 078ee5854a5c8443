"""Errors from talking to a backend.

    UpstreamError (server, message, status)     -> 502: unreachable, bad status, garbage answer
    ├── UpstreamTimeout (server)                -> 504: no answer within the server's timeout
    ├── BackendDisconnected (server, message)   -> 502: the connection closed before any answer
    ├── ResponseTooLarge (server, limit)        -> 502: a JSON body or SSE event past the cap
    ├── CallBudgetExceeded (server, limit)      -> 502: one call relayed more bytes than its budget
    ├── SubjectBusy (server, limit)             -> 503: the caller has too many requests on this backend
    ├── StreamsExhausted (server, limits)       -> 503: every connection kept for long-lived streams is held
    └── UpstreamRpcError (server, code, message, data) -> the backend answered a JSON-RPC error

Messages never include credentials or response bodies beyond a short, safe excerpt: a backend's
own error text is quoted only through `excerpt` (or masked whole, an UpstreamRpcError's message and
data), which masks credential shapes and the server's credential in every form it may be echoed in
(gateway/masking.py), and every other value the gateway sent on that request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import orjson

from gateway.masking import mask, mask_error

if TYPE_CHECKING:
    import aiohttp

EXCERPT = 200
# Request headers that never carry a credential; every other value the gateway sent is masked.
_PLAIN_HEADERS = frozenset({"accept", "accept-encoding", "content-type", "content-length", "host", "user-agent",
                            "mcp-protocol-version", "mcp-method", "mcp-name", "traceparent", "tracestate"})


def excerpt(text: str, sent: Iterable[str] = ()) -> str:
    """A backend's text as a message may quote it: masked (gateway/masking.py: the `sent` values and
    the server's credential forms, before it is cut, so no secret survives in part), at most EXCERPT
    printable characters."""
    return mask(text, sent)[:EXCERPT]


def sent_values(resp: aiohttp.ClientResponse) -> list[str]:
    """What the gateway sent with the request `resp` answers that may be a credential: header values
    (and a scheme's token alone) but the plain MCP ones, and query values."""
    info = resp.request_info
    values = [v for k, v in info.headers.items() if k.lower() not in _PLAIN_HEADERS]
    values += [v.partition(" ")[2] for v in values if " " in v]
    # Shorter values would garble the text (the configured credential itself is masked at any length).
    return [v for v in values + list(info.url.query.values()) if len(v) >= 4]


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


class StreamsExhausted(UpstreamError):
    """Every connection of the long-lived streams' pool is held (upstream/connections.py): one more
    stream is refused at once rather than wait for another to close."""

    http_status = 503

    def __init__(self, server: str, limit: int, per_host: int) -> None:
        super().__init__(server, f"no connection free for another long-lived stream ({limit} in all: "
                                 f"MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS, {per_host} per backend host: "
                                 "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST); retry later")


class UpstreamRpcError(UpstreamError):
    """The backend answered with a JSON-RPC error object: its message and data kept masked with `forms`
    (the server's credential forms, CredentialStore.forms), as the agent, logs and audit get them."""

    def __init__(self, server: str, error: dict[str, Any], forms: Iterable[str],
                 status: int | None = None) -> None:
        error = mask_error(error, forms)
        self.code = error.get("code")
        self.rpc_message = str(error["message"])
        self.data = error.get("data")
        super().__init__(server, f"error {self.code}: {self.rpc_message[:EXCERPT]}", status)


async def status_error(server: str, resp: aiohttp.ClientResponse, forms: Iterable[str]) -> UpstreamError:
    """A backend's 5xx as an UpstreamError carrying the JSON-RPC error message of its body, if any.

    Only an `excerpt` of `error.message` is kept (the stdio bridge says why a server is unavailable
    this way), with the server's credential `forms` and what the gateway sent masked; any other body is not read past 4 KiB and not repeated.
    """
    detail = ""
    if resp.content_type == "application/json":
        try:
            body = orjson.loads(await resp.content.read(4096))
            message = body["error"]["message"] if isinstance(body, dict) else None
        except Exception:  # an unreadable excerpt changes nothing: the status still says 5xx
            message = None
        if isinstance(message, str):
            detail = ": " + excerpt(message, [*forms, *sent_values(resp)])
    return UpstreamError(server, f"HTTP {resp.status}{detail}", resp.status)
