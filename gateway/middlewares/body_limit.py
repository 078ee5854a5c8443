"""Body limit: refuse a declared Content-Length over the limit before anything reads the body.

Chunked bodies without a length are capped by the application's `client_max_size`, which aiohttp
enforces while reading (it raises 413, turned into our JSON error by the errors middleware).
"""

from __future__ import annotations

from aiohttp import web

from gateway.errors import PayloadTooLarge


def check_body_limit(request: web.Request, max_bytes: int) -> None:
    """Raise 413 for a request announcing more than `max_bytes`."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadTooLarge(f"request body of {length} bytes exceeds the limit of {max_bytes} bytes")
