"""Security headers for every console response (CSP without unsafe-inline, no framing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def console_headers_middleware(prefix: str = "/console") -> Callable[..., Awaitable[web.StreamResponse]]:
    """Add HEADERS to responses (and errors) under `prefix`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(prefix):
            return await handler(request)
        try:
            resp = await handler(request)
        except web.HTTPException as exc:
            exc.headers.update(HEADERS)
            raise
        resp.headers.update(HEADERS)
        return resp

    return middleware
