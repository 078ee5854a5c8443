"""JSON-RPC framing and an incremental Server-Sent Events parser (WHATWG rules), on orjson.

Pure code: no I/O. `SSEParser.feed(bytes)` returns the events completed by that chunk; lines may
end in CRLF, LF or CR, `:` lines are comments (keep-alives), several `data:` lines join with
"\n", and an event is dispatched at a blank line.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

import orjson

MODERN_VERSION = "2026-07-28"
HANDSHAKE_VERSION = "2025-11-25"
META_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# Methods whose target is mirrored in the `Mcp-Name` header (2026-07-28), and the param holding it.
NAME_PARAM = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}
_HEADER_SAFE = re.compile(r"^[\x20-\x7e]*$")
_B64_SENTINEL = re.compile(r"^=\?base64\?.*\?=$")


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched SSE event."""

    event: str
    data: str
    id: str | None = None
    retry: int | None = None


class SSEParser:
    """Incremental SSE parser; feed it bytes as they arrive."""

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._size = 0  # bytes of data lines in the event being assembled

    @property
    def pending(self) -> int:
        """Bytes held for the event not yet dispatched (its data lines plus an unfinished line)."""
        return self._size + len(self._buffer)

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume `chunk`; return the events it completed."""
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[SSEEvent] = []
        pos = 0
        while True:
            cut = _line_end(buffer, pos)
            if cut is None:
                break
            end, skip = cut
            event = self._line(buffer[pos:end].decode("utf-8", errors="replace"))
            pos = end + skip
            if event is not None:
                events.append(event)
        self._buffer = buffer[pos:]
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: a trailing CR still ends its line; an unterminated event is dropped."""
        events = self.feed(b"\n") if self._buffer.endswith(b"\r") else []
        self._buffer, self._data, self._size = b"", [], 0
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            # Only events with at least one data line are dispatched; `id` persists (last event id).
            data, event, retry = self._data, self._event, self._retry
            self._data, self._event, self._retry, self._size = [], "", None, 0
            return SSEEvent(event or "message", "\n".join(data), self._id, retry) if data else None
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._size += len(value) + 1
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isdigit():
                self._retry = int(value)
        return None


def _line_end(buffer: bytes, pos: int) -> tuple[int, int] | None:
    """Index of the first line terminator at or after `pos` and its length.

    A CR as the last byte waits for more data: it may be the first half of a CRLF.
    """
    lf, cr = buffer.find(b"\n", pos), buffer.find(b"\r", pos)
    if cr == -1:
        return None if lf == -1 else (lf, 1)
    if lf != -1 and lf < cr:
        return lf, 1
    if cr + 1 == len(buffer):
        return None
    return (cr, 2) if buffer[cr + 1] == 0x0A else (cr, 1)


def parse_sse(payload: bytes) -> list[SSEEvent]:
    """All complete events of a whole SSE body."""
    parser = SSEParser()
    return parser.feed(payload) + parser.close()


def event_message(event: SSEEvent) -> dict[str, Any] | None:
    """The JSON object a `message` event carries; None for another event type, an empty or
    malformed event, or JSON that is not an object (listeners skip those, they do not fail)."""
    if event.event != "message" or not event.data:
        return None
    try:
        message = decode(event.data)
    except ValueError:
        return None
    return message if isinstance(message, dict) else None


def encode(message: dict[str, Any]) -> bytes:
    """Serialise a JSON-RPC message."""
    return orjson.dumps(message)


def decode(payload: bytes | str) -> Any:
    """Parse JSON; raise ValueError on bad input."""
    return orjson.loads(payload)


def request_message(
    request_id: int | str, method: str, params: dict[str, Any] | None
) -> dict[str, Any]:
    """A JSON-RPC request object (params omitted when None)."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def with_modern_meta(params: dict[str, Any] | None, capabilities: dict[str, Any]) -> dict[str, Any]:
    """A copy of `params` whose `_meta` carries the 2026-07-28 version and client capabilities."""
    params = dict(params or {})
    meta = dict(params.get("_meta") or {})
    meta[META_VERSION] = MODERN_VERSION
    meta.setdefault(META_CAPABILITIES, capabilities)  # a relayed agent call keeps its own
    params["_meta"] = meta
    return params


def header_value(value: str) -> str:
    """An `Mcp-Name` value that survives HTTP: printable ASCII verbatim, else the base64 sentinel."""
    if (
        _HEADER_SAFE.fullmatch(value)
        and value == value.strip()
        and not _B64_SENTINEL.fullmatch(value)
    ):
        return value
    return "=?base64?" + base64.b64encode(value.encode()).decode("ascii") + "?="


def routing_headers(method: str, params: dict[str, Any] | None) -> dict[str, str]:
    """The 2026-07-28 routing headers for a request: `Mcp-Method` and, where defined, `Mcp-Name`."""
    headers = {"MCP-Protocol-Version": MODERN_VERSION, "Mcp-Method": method}
    key = NAME_PARAM.get(method)
    if key and params and isinstance(params.get(key), str):
        headers["Mcp-Name"] = header_value(params[key])
    return headers


def is_response_to(message: Any, request_id: int | str) -> bool:
    """True if `message` is the JSON-RPC response (result or error) for `request_id`."""
    return (
        isinstance(message, dict)
        and message.get("id") == request_id
        and ("result" in message or "error" in message)
        and "method" not in message
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
