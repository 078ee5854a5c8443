"""The JSON-RPC module: framing, the answer check, era evidence, result normalisation, on orjson.

Pure code, no I/O. SSE parsing is sse.py's.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeGuard

import orjson

from gateway.upstream.errors import UpstreamError

RequestId = int | str  # a JSON-RPC request id
MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcpgw", "version": "0.1.0"}
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# Methods whose target is mirrored in the `Mcp-Name` header (2026-07-28), and the param holding it.
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
# Paginated list methods and the result key holding their items.
LIST_KEYS = {"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources",
             "resources/templates/list": "resourceTemplates"}
# A backend's announcements that one of its lists changed (the catalog poller re-reads it: changes.py)
LIST_CHANGED = frozenset({"notifications/tools/list_changed", "notifications/prompts/list_changed",
                          "notifications/resources/list_changed"})
MAX_PAGES = 100
_HEADER_SAFE = re.compile(r"^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$")


class Event(Protocol):
    """What `event_message` reads of an SSE event (sse.Event; sse.py imports this module, not back)."""

    @property
    def event(self) -> str: ...

    @property
    def data(self) -> str | None: ...


def event_message(event: Event) -> dict[str, Any] | None:
    """The JSON object a `message` event carries; None for another event type, an empty or
    malformed event, or JSON that is not an object (listeners skip those, they do not fail)."""
    if event.event != "message" or not event.data:
        return None
    message = loads_or_none(event.data)
    return message if isinstance(message, dict) else None


def decode(payload: bytes | str, server: str | None = None) -> Any:
    """Parse JSON; bad input raises ValueError, or with `server` named, UpstreamError (the backend's
    failure: 502)."""
    try:
        return orjson.loads(payload)
    except ValueError:
        if server is None:
            raise
        raise UpstreamError(server, "backend sent malformed JSON") from None


def loads_or_none(payload: bytes | str | None) -> Any:
    """Parse JSON leniently: None for an empty or malformed payload."""
    if not payload:
        return None
    try:
        return orjson.loads(payload)
    except ValueError:
        return None


def request_message(
    request_id: RequestId, method: str, params: dict[str, Any] | None
) -> dict[str, Any]:
    """A JSON-RPC request object (params omitted when None)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def initialize_params(capabilities: dict[str, Any]) -> dict[str, Any]:
    """The gateway's `initialize` params (2025 era), declaring `capabilities`."""
    return {"protocolVersion": HANDSHAKE_VERSION, "capabilities": capabilities, "clientInfo": CLIENT_INFO}


def with_modern_meta(params: dict[str, Any] | None, capabilities: dict[str, Any]) -> dict[str, Any]:
    """A copy of `params` whose `_meta` carries the 2026-07-28 version and client capabilities."""
    params = dict(params or {})
    meta = dict(params.get("_meta") or {})
    meta[META_VERSION] = MODERN_VERSION
    meta.setdefault(META_CAPABILITIES, capabilities)  # a relayed agent call keeps its own
    params["_meta"] = meta
    return params


def header_value(value: str) -> str:
    """A header value (`Mcp-Name`, `Mcp-Param-*`) that survives HTTP, the one encoder for both sides:
    visible ASCII without surrounding spaces verbatim, unless it starts `=?` (it would read as
    encoded); anything else as `=?base64?…?=`."""
    if _HEADER_SAFE.fullmatch(value) and not value.startswith("=?"):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def routing_headers(method: str, params: dict[str, Any] | None) -> dict[str, str]:
    """The 2026-07-28 routing headers for a request: `Mcp-Method` and, where defined, `Mcp-Name`."""
    headers = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
    key = NAME_PARAM.get(method)
    if key and params and isinstance(params.get(key), str):
        headers["Mcp-Name"] = header_value(params[key])
    return headers


def is_response_to(message: object, request_id: RequestId | None) -> TypeGuard[dict[str, Any]]:
    """True if `message` is the JSON-RPC response (result or error) to `request_id` (to any request
    when it is None): the one "is this the answer to my request" check."""
    return (
        isinstance(message, dict)
        and ("result" in message or "error" in message)
        and "method" not in message
        and (request_id is None or message.get("id") == request_id)
    )


# Errors about the message itself: a new session would not change the answer.
MESSAGE_ERRORS = frozenset({-32700, -32601, -32602})


def session_refused(status: int, answer: Any) -> bool:
    """True when a backend refused a message sent in our session because of the session.

    404 is the spec's "session not found". 400 is what backends following the TypeScript SDK's
    README pattern answer for a session they do not know (server-everything after a restart:
    -32000 "Bad Request: No valid session ID provided"). Either way the transport refused the
    message before running it (a request it runs is answered with 200), so a retry in a new
    session cannot run it twice. A 400 naming a fault of the message itself (parse error, unknown
    method, invalid params) is not about the session.
    """
    if status == 404:
        return True
    if status != 400:
        return False
    error = answer.get("error") if isinstance(answer, dict) else None
    return not (isinstance(error, dict) and error.get("code") in MESSAGE_ERRORS)


def modern_evidence(message: Any) -> list[str] | None:
    """Versions a probe reply proves the backend speaks in 2026-07-28 style, else None.

    A discover result lists `supportedVersions`; a -32022 error lists `data.supported`; a -32020
    (header mismatch) only a modern server can send. Anything else is not evidence.
    """
    if not isinstance(message, dict):
        return None
    result = message.get("result")
    if isinstance(result, dict) and isinstance(result.get("supportedVersions"), list):
        return [v for v in result["supportedVersions"] if isinstance(v, str)]
    error = message.get("error")
    if isinstance(error, dict):
        data = error.get("data")
        if (
            error.get("code") == -32022
            and isinstance(data, dict)
            and isinstance(data.get("supported"), list)
        ):
            return [v for v in data["supported"] if isinstance(v, str)]
        if error.get("code") == -32020:
            return [MODERN_VERSION]
    return None


def normalise_result(result: Any) -> Any:
    """Make a 2026-07-28 result look like a 2025-11-25 one: drop `resultType: complete` and the
    per-response server info in `_meta` (the handshake era sends that once, at initialize)."""
    if not isinstance(result, dict):
        return result
    if result.get("resultType") == "complete":
        result = {k: v for k, v in result.items() if k != "resultType"}
    meta = result.get("_meta")
    if isinstance(meta, dict) and SERVER_INFO in meta:
        meta = {k: v for k, v in meta.items() if k != SERVER_INFO}
        result = {k: v for k, v in result.items() if k != "_meta"}
        if meta:
            result["_meta"] = meta
    return result


class ListTooLarge(UpstreamError):
    """One listing (all its pages) passed the item cap or the byte budget: left out whole, never kept."""

    def __init__(self, server: str, message: str, items: int) -> None:
        super().__init__(server, message)
        self.items = items  # read before stopping


async def every_page(server: str, method: str, page: Callable[[dict[str, Any] | None], Awaitable[Any]], *,
                     max_items: int | None = None, max_bytes: int | None = None) -> list[dict[str, Any]]:
    """Every item of a paginated list, following `nextCursor`: `page(params)` fetches one result.

    The one paginator: a page without its list, a cursor that is not a string or comes back
    again (a loop), or more than MAX_PAGES pages is the backend's failure, never an endless walk.
    All pages together count against `max_items` and `max_bytes` (items as JSON): past either,
    ListTooLarge, and no further page is read.
    """
    key = LIST_KEYS[method]
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    params: dict[str, Any] | None = None
    size = 0
    for _ in range(MAX_PAGES):
        result = await page(params)
        found = result.get(key) if isinstance(result, dict) else None
        if not isinstance(found, list):
            raise UpstreamError(server, f"{method} result has no {key} list")
        kept = [i for i in found if isinstance(i, dict)]
        items.extend(kept)
        if max_items is not None and len(items) > max_items:
            raise ListTooLarge(server, f"{method} lists more than {max_items} items", len(items))
        if max_bytes is not None:
            size += len(orjson.dumps(kept))
            if size > max_bytes:
                raise ListTooLarge(server, f"{method} lists more than {max_bytes} bytes", len(items))
        cursor = result.get("nextCursor")
        if not cursor:
            return items
        if not isinstance(cursor, str) or cursor in seen:
            raise UpstreamError(server, f"{method} cursor repeats or is not a string")
        seen.add(cursor)
        params = {"cursor": cursor}
    raise UpstreamError(server, f"{method} exceeded {MAX_PAGES} pages")
