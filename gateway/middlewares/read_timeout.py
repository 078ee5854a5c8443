"""Body read timeout: a request body must arrive within `body_timeout` seconds (slow-body guard).

Header timeouts are aiohttp's: `create_app` sets the connection's `keepalive_timeout` to
`header_timeout`, and aiohttp closes a connection still waiting for a complete request line and
headers after that long — whether it has been idle or is trickling a request in byte by byte.
Bodies are read here, once and bounded (the body limit runs first), so no handler waits on a
client that sends one byte a second; handlers then get the cached body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import RequestTimeout

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_timeout_middleware(seconds: float) -> Callable[..., Awaitable[web.StreamResponse]]:
    """408 when a request's body is not complete within `seconds`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            try:
                async with asyncio.timeout(seconds):
                    await request.read()
            except TimeoutError:
                raise RequestTimeout(
                    f"request body not received within {seconds:g} s (MCPGW_GATEWAY_BODY_TIMEOUT)") from None
        return await handler(request)

    return middleware
