"""Body limit: refuse a declared Content-Length over the limit before anything reads the body
(chunked bodies are capped by the app's `client_max_size` while reading)."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import PayloadTooLarge


def check_body_limit(request: web.Request, max_bytes: int) -> None:
    """Raise 413 for a request announcing more than `max_bytes`."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {max_bytes} bytes")
