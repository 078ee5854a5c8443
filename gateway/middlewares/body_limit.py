"""Body limit: refuse a declared Content-Length over the limit before anything reads the body
(chunked bodies are capped by the app's `client_max_size` while reading)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.errors import PayloadTooLarge

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def body_limit_middleware(max_bytes: int) -> Callable[..., Awaitable[web.StreamResponse]]:
    """413 for requests announcing more than `max_bytes`."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > max_bytes:
            raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {max_bytes} bytes")
        return await handler(request)

    return middleware
