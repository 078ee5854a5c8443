"""Request id: reuse a well-formed incoming `X-Request-ID`, else mint one; echo it back."""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.keys import REQUEST_ID
from shared.logging import request_id_var

HEADER = "X-Request-ID"
# Anything else (newlines, huge values) would end up in logs and audit rows verbatim.
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,64}")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_id_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Attach the id to the request, the logging context and the response."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        incoming = request.headers.get(HEADER)
        rid = incoming if incoming and _VALID.fullmatch(incoming) else os.urandom(16).hex()
        request[REQUEST_ID] = rid
        token = request_id_var.set(rid)
        try:
            response = await handler(request)
        finally:
            request_id_var.reset(token)
        response.headers[HEADER] = rid
        return response

    return middleware
