"""Access log: one structured line per request (method, route, status, duration, request id, subject).

Logger `mcpgw.access`, at the level set by MCPGW_LOG_ACCESS (`off` turns it off). Probe and
scrape routes (/health, /healthz, /readyz, /metrics) log one level lower, so a 5-second liveness
probe does not bury the requests that matter. The route is the matched template (bounded
cardinality, no ids or tokens from the path); the request id comes from the logging context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.logging import direct_handler, direct_line
from shared.metrics import route_name
from shared.outcome import Outcome

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SubjectOf = Callable[[web.Request], str | None]

log = logging.getLogger("mcpgw.access")
QUIET_ROUTES = frozenset({"/health", "/healthz", "/readyz", "/metrics"})
LEVELS = ("off", "DEBUG", "INFO", "WARNING")


def access_log_middleware(level: str, subject_of: SubjectOf) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Log each request after it completed (or failed) at `level`; `off` logs nothing."""
    main = logging.getLevelName(level) if level != "off" else None
    quiet = max(logging.DEBUG, (main or logging.DEBUG) - 10)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if main is None:
            return await handler(request)
        start = time.perf_counter()
        outcome = Outcome()
        try:
            return await outcome.run(handler, request)
        finally:
            status = outcome.status
            route = route_name(request)
            at = quiet if route in QUIET_ROUTES else main
            if log.isEnabledFor(at):
                method = request.method
                fields = {
                    "method": method, "route": route, "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 3),
                    "subject": subject_of(request), "client_addr": request.remote,
                }
                sink = direct_handler(log, at)
                if sink is not None:  # the same line, without the LogRecord machinery
                    direct_line(sink, at, log.name, f"{method} {route} {status}", fields)
                else:
                    log.log(at, "%s %s %s", method, route, status, extra=fields)

    return middleware
