"""Errors: every failure becomes `{"error": {"code", "message"}}` with the right status.

Unexpected exceptions are logged with their traceback and answered 500 without details, so no
internal state (or a secret inside an exception message) reaches the caller.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import to_gateway_error
from gateway.middlewares.refuse import error_body, record

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media_type",
}


def _from_http(exc: web.HTTPException) -> web.Response:
    if exc.content_type == "application/json" and exc.body:
        return web.Response(body=exc.body, status=exc.status, content_type="application/json")
    if exc.status == 404:
        message = "no such endpoint"
    elif exc.status == 413:
        message = "request body exceeds the configured limit"
    else:
        message = exc.text or exc.reason
        message = message.removeprefix(f"{exc.status}: ")
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "www-authenticate")}
    return error_body(exc.status, _CODES.get(exc.status, "http_error"), message, headers)


def errors_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Turn exceptions into JSON error responses."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            response = _from_http(exc)
            record(request, exc.reason)
            return response
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            mapped = to_gateway_error(exc)
            if mapped is None:
                log.exception("unhandled error", extra={"path": request.path})
                record(request, f"internal error ({type(exc).__name__})")
                return error_body(500, "internal_error", "internal error; see the gateway log")
            record(request, f"{mapped.code}: {mapped.message}")
            return error_body(mapped.status, mapped.code, mapped.message, mapped.headers, mapped.details)

    return middleware
