"""orjson helpers: one place for dumps/loads and aiohttp JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(value: Any) -> bytes:
    """Serialize to JSON bytes (dataclasses, datetimes, UUIDs supported)."""
    return orjson.dumps(value, option=_OPTIONS, default=_default)


def dumps_str(value: Any) -> str:
    """Serialize to a JSON str."""
    return dumps(value).decode()


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """Parse JSON; raises orjson.JSONDecodeError (a ValueError) on bad input."""
    return orjson.loads(data)


def _default(value: Any) -> Any:
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def json_response(value: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """An aiohttp response with an orjson body."""
    return web.Response(body=dumps(value), status=status, headers=headers, content_type="application/json")


def error_response(status: int, code: str, message: str, **extra: Any) -> web.Response:
    """The common error body `{"error": {"code", "message", ...}}`."""
    return json_response({"error": {"code": code, "message": message, **extra}}, status=status)


async def read_json(request: web.Request) -> Any:
    """Parse a request body as JSON or raise HTTP 400 with a clear message."""
    body = await request.read()
    if not body:
        raise _bad_request("request body is empty; expected JSON")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise _bad_request(f"malformed JSON: {exc}") from None


def _bad_request(message: str) -> web.HTTPBadRequest:
    # `text=`, not `body=`: aiohttp 3.14 deprecates `body` on HTTP exceptions, and under
    # `filterwarnings = error` that warning turned every bad body into a 500.
    return web.HTTPBadRequest(
        text=dumps_str({"error": {"code": "bad_request", "message": message}}),
        content_type="application/json",
    )
