"""Access log: one structured line per request (method, route, status, duration, request id, subject).

Logger `mcpgw.access`, at the level set by MCPGW_LOG_ACCESS (`off` turns it off). Probe and
scrape routes (/health, /healthz, /readyz, /metrics) log one level lower, so a 5-second liveness
probe does not bury the requests that matter. The route is the matched template (bounded
cardinality, no ids or tokens from the path); the request id comes from the logging context.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp import web

from shared.logging import direct_handler, direct_line

SubjectOf = Callable[[web.Request], str | None]

log = logging.getLogger("mcpgw.access")
QUIET_ROUTES = frozenset({"/health", "/healthz", "/readyz", "/metrics"})
LEVELS = ("off", "DEBUG", "INFO", "WARNING")


AccessWriter = Callable[[web.Request, str, int, float], None]


def access_writer(level: str, subject_of: SubjectOf) -> AccessWriter | None:
    """`write(request, route, status, start)`: the access line of one finished request (None for `off`)."""
    if level == "off":
        return None
    main = logging.getLevelName(level)
    quiet = max(logging.DEBUG, main - 10)

    def write(request: web.Request, route: str, status: int, start: float) -> None:
        at = quiet if route in QUIET_ROUTES else main
        if not log.isEnabledFor(at):
            return
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

    return write
