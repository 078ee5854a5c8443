"""MCP wire rules the gateway enforces as a server: eras, versions, headers, JSON-RPC shapes. Pure.

Two eras arrive on one endpoint: handshake (2025-*: `initialize`, `Mcp-Session-Id`, GET stream) and
modern (2026-07-28: stateless POSTs carrying `params._meta` and routing headers).
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Mapping
from typing import Any, Literal

from multidict import MultiMapping, istr

from gateway.edge import origin_allowed as origin_allowed  # the MCP transport's Origin rule
from gateway.upstream.codec import META_CAPABILITIES, META_VERSION, NAME_PARAM, SERVER_INFO
from gateway.upstream.codec import header_value as encode_header  # one encoder for both sides

HANDSHAKE_VERSIONS = ("2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
LATEST_HANDSHAKE = HANDSHAKE_VERSIONS[-1]

H_SESSION = "Mcp-Session-Id"
H_VERSION = "MCP-Protocol-Version"
H_METHOD = "Mcp-Method"
H_NAME = "Mcp-Name"
# Case-insensitive header keys: a CIMultiDict looks an istr up without folding it each time.
I_SESSION, I_VERSION, I_METHOD, I_NAME = istr(H_SESSION), istr(H_VERSION), istr(H_METHOD), istr(H_NAME)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
HEADER_MISMATCH = -32020
UNSUPPORTED_VERSION = -32022

# HTTP status for a JSON-RPC error the gateway itself answers with (modern-era table).
ERROR_STATUS = {
    PARSE_ERROR: 400, INVALID_REQUEST: 400, INVALID_PARAMS: 400, HEADER_MISMATCH: 400,
    UNSUPPORTED_VERSION: 400, METHOD_NOT_FOUND: 404,
}

Era = Literal["handshake", "modern"]
RequestId = str | int | None  # a JSON-RPC id (None: a notification, or an unreadable id)


class RpcFailure(Exception):
    """A JSON-RPC error to answer with; `status` is the HTTP status it travels with."""

    def __init__(self, code: int, message: str, data: Any = None, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.status = status if status is not None else ERROR_STATUS.get(code, 200)


def result(rid: RequestId, value: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-RPC success response."""
    return {"jsonrpc": "2.0", "id": rid, "result": dict(value)}


def without_meta(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` without the agent's `_meta` (the gateway sends backends its own)."""
    return {k: v for k, v in params.items() if k != "_meta"}


def discover_result(capabilities: Any, server_info: Any, instructions: Any = None) -> dict[str, Any]:
    """A 2026-07-28 `server/discover` result."""
    out = {"supportedVersions": list(MODERN_VERSIONS), "capabilities": capabilities,
           "_meta": {SERVER_INFO: server_info}}
    if isinstance(instructions, str):
        out["instructions"] = instructions
    return out


def error(rid: RequestId, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """A JSON-RPC error response (id may be null when the request id was unreadable)."""
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}


class Message:
    """One parsed JSON-RPC message from a client POST (id, method and params read once)."""

    __slots__ = ("body", "id", "kind", "method", "params")

    def __init__(self, kind: Literal["request", "notification", "response"], body: dict[str, Any]) -> None:
        self.kind = kind
        self.body = body
        self.id: RequestId = body.get("id")
        method = body.get("method", "")
        self.method: str = method if type(method) is str else str(method)
        params = body.get("params")
        self.params: dict[str, Any] = params if isinstance(params, dict) else {}


def parse_message(body: Any) -> Message:
    """Classify a decoded POST body; batches and malformed objects raise RpcFailure(-32600)."""
    if type(body) is dict and body.get("jsonrpc") == "2.0":
        # Fast path: a request with a non-empty string method, an int/str id and object params.
        method, rid, params = body.get("method"), body.get("id"), body.get("params")
        if (type(method) is str and method and (type(rid) is int or type(rid) is str)
                and (params is None or type(params) is dict)):
            return Message("request", body)
    return _parse_slow(body)


def _parse_slow(body: Any) -> Message:
    if isinstance(body, list):
        raise RpcFailure(INVALID_REQUEST, "JSON-RPC batches are not supported; send one message per POST")
    if not isinstance(body, dict) or body.get("jsonrpc") != "2.0":
        raise RpcFailure(INVALID_REQUEST, "expected a JSON-RPC 2.0 object")
    params = body.get("params")
    if params is not None and not isinstance(params, dict):
        raise RpcFailure(INVALID_PARAMS, "params must be an object")
    has_id = "id" in body and isinstance(body["id"], str | int) and not isinstance(body["id"], bool)
    if "method" in body:
        if not isinstance(body["method"], str) or not body["method"]:
            raise RpcFailure(INVALID_REQUEST, "method must be a non-empty string")
        if "id" in body and not has_id:
            raise RpcFailure(INVALID_REQUEST, "id must be a string or an integer")
        return Message("request" if has_id else "notification", body)
    if has_id and ("result" in body or "error" in body):
        return Message("response", body)
    raise RpcFailure(INVALID_REQUEST, "not a JSON-RPC request, notification or response")


def detect_era(msg: Message, headers: Mapping[str, str]) -> Era:
    """Which era a client message belongs to: `_meta` version or a modern header means modern."""
    if msg.method == "initialize" or headers.get(I_SESSION):
        return "handshake"
    meta = msg.params.get("_meta")
    if isinstance(meta, dict) and META_VERSION in meta:
        return "modern"
    if headers.get(I_VERSION) in MODERN_VERSIONS or headers.get(I_METHOD):
        return "modern"
    return "handshake"


_B64 = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")


def decode_header(value: str | None) -> str | None:
    """An `Mcp-Name` value, unwrapping the `=?base64?…?=` form; None when malformed."""
    match = _B64.fullmatch(value) if value is not None and value.startswith("=?") else None
    if match is None:
        return value
    try:
        return base64.b64decode(match["payload"], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def check_headers(msg: Message, headers: MultiMapping[str], era: Era) -> None:
    """A message's envelope and routing headers, in the spec's order: a 2026-07-28 request's `_meta`
    (−32602), headers against the body (−32020: whoever routes or authorises on a header must see
    what the body says; both eras, when sent; required in 2026-07-28), its version (−32022)."""
    modern = era == "modern" and msg.kind == "request"
    version = None
    if modern:
        meta = msg.params.get("_meta")
        if not isinstance(meta, dict):
            raise RpcFailure(INVALID_PARAMS, f"params._meta must carry {META_VERSION!r} and {META_CAPABILITIES!r}")
        if META_VERSION not in meta or META_CAPABILITIES not in meta:
            missing = [k for k in (META_VERSION, META_CAPABILITIES) if k not in meta]
            raise RpcFailure(INVALID_PARAMS, f"params._meta is missing: {', '.join(missing)}")
        version = meta[META_VERSION]
        if headers.get(I_VERSION) != version:
            raise RpcFailure(HEADER_MISMATCH, f"{H_VERSION} header does not match params._meta protocol version")
    for header, label in ((I_METHOD, H_METHOD), (I_NAME, H_NAME)):
        if len(headers.getall(header, ())) > 1:
            raise RpcFailure(HEADER_MISMATCH, f"{label} header appears more than once")
    method_header = headers.get(I_METHOD)
    if (modern or method_header is not None) and method_header != msg.method:
        raise RpcFailure(HEADER_MISMATCH, f"{H_METHOD} header does not match the body's method")
    name_header, key = headers.get(I_NAME), NAME_PARAM.get(msg.method)
    named = key is not None and msg.params.get(key) is not None
    if (name_header is not None or (modern and named)) and (
            key is None or decode_header(name_header) != msg.params.get(key)):
        raise RpcFailure(HEADER_MISMATCH, f"{H_NAME} header does not match the body")
    if modern and (not isinstance(version, str) or version not in MODERN_VERSIONS):
        raise RpcFailure(UNSUPPORTED_VERSION, "Unsupported protocol version",
                         {"supported": list(MODERN_VERSIONS), "requested": version if isinstance(version, str) else None})


def routing_headers(msg: Message) -> dict[str, str]:
    """`Mcp-Method` (and `Mcp-Name`) rebuilt from the body, for a modern-era message sent upstream."""
    out = {H_METHOD: msg.method} if msg.method else {}
    key = NAME_PARAM.get(msg.method)
    value = msg.params.get(key) if key else None
    if isinstance(value, str):
        out[H_NAME] = encode_header(value)
    return out


def negotiate(requested: Any) -> str:
    """The handshake version to answer `initialize` with: the client's if known, else our latest."""
    return requested if requested in HANDSHAKE_VERSIONS else LATEST_HANDSHAKE


@functools.lru_cache(maxsize=64)
def accepts_post(accept: str | None) -> bool:
    """A POST must accept both JSON and SSE answers (`*/*` covers both); cached: clients repeat theirs."""
    types = _media_types(accept)
    return "*/*" in types or (bool(types & {"application/json", "application/*"})
                              and bool(types & {"text/event-stream", "text/*"}))


def accepts_sse(accept: str | None) -> bool:
    """A GET stream needs `text/event-stream` in Accept."""
    return bool(_media_types(accept) & {"text/event-stream", "text/*", "*/*"})


def _media_types(accept: str | None) -> set[str]:
    return {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}


# 2026-07-28 results that carry caching directives (required on the wire).
CACHEABLE = frozenset({"server/discover", "tools/list", "prompts/list", "resources/list",
                       "resources/templates/list", "resources/read"})


def with_result_type(value: Mapping[str, Any], era: Era, method: str | None = None) -> dict[str, Any]:
    """Modern results carry `resultType` (and cache fields when cacheable); older ones carry neither."""
    out = dict(value)
    if era == "modern":
        out.setdefault("resultType", "complete")
        if method in CACHEABLE:
            # Answers are filtered per caller: never let a shared cache reuse them.
            out.setdefault("ttlMs", 0)
            out["cacheScope"] = "private"
    else:
        for key in ("resultType", "ttlMs", "cacheScope"):
            out.pop(key, None)
    return out
