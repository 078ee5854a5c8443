"""Audit: one event per non-public request, emitted after the response status is known.

It sits outside the errors middleware, so it sees the final status of every outcome (allowed,
denied, failed, unauthenticated). `emit` is a queue put: nothing here waits on the database.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.gwaudit import AuditInfo, build_event
from gateway.keys import AUDIT_INFO, PRINCIPAL, REQUEST_ID
from gateway.middlewares.auth import PUBLIC_PATHS
from shared.keys import AUDIT

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def audit_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """Record and emit the request's audit event through the app's emitter (`shared.keys.AUDIT`)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        emitter = request.app.get(AUDIT)
        if emitter is None or request.path in PUBLIC_PATHS:
            return await handler(request)
        info = AuditInfo()
        request[AUDIT_INFO] = info
        start = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            principal = request.get(PRINCIPAL)
            emitter.emit(build_event(  # built here for this emit only: redacted in place (owned)
                info,
                http_status=status,
                duration_ms=(time.perf_counter() - start) * 1000,
                subject=principal.subject if principal is not None else None,
                roles=principal.roles if principal is not None else None,
                request_id=request.get(REQUEST_ID),
                client_addr=request.remote,
                method=request.method,
                path=request.path,
            ), owned=True)

    return middleware
