"""Gateway middlewares, one per module, installed in one place in a deliberate order."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import PRINCIPAL, REQUEST_ID
from gateway.metrics import GatewayMetrics
from gateway.middlewares.audit import audit_recorder
from gateway.middlewares.edge import edge_middleware
from gateway.middlewares.errors import errors_middleware
from gateway.middlewares.headers import server_limits
from gateway.settings import GatewaySettings
from shared.access_log import access_writer
from shared.logging import request_id_middleware
from shared.metrics import HttpMetrics, http_recorder
from shared.outcome import outcome_middleware
from shared.tracing import Tracer

__all__ = ["install", "server_limits"]


def install(app: web.Application, settings: GatewaySettings, *, http_metrics: HttpMetrics,
            gateway_metrics: GatewayMetrics, dev_principal: Any | None, tracer: Tracer | None = None) -> None:
    """Install the middlewares, outermost first."""
    chain = [
        # 1. The id first, so every log line and the audit event of this request carry it.
        request_id_middleware(REQUEST_ID),
        # 2. The request's outcome, one middleware (shared/outcome.py) outside the error mapping:
        #    the server span when tracing is on (current while everything below runs: its trace id
        #    is in every line and the audit event), then the audit event with the status the caller
        #    really got, the HTTP metrics and the access line (final status of everything, rejected
        #    requests included, and the subject the auth step found).
        outcome_middleware(http_recorder(http_metrics), access_writer(settings.log_access, _subject),
                           audit_recorder(), tracer),
        # 3. Errors: everything inside raises, this turns it into the JSON error body.
        errors_middleware(),
        # 4. The edge, one middleware running its checks in this order (gateway/middlewares/edge.py):
        #    duplicated or oversized security headers (before anything reads them), a declared body
        #    over the limit, the browser guard (CSRF, DNS rebinding; before the token and in no-auth
        #    mode too), authentication (no handler without a principal), then the body read once
        #    within a deadline and its JSON shape checked, after auth so only a caller with a valid
        #    token gets one read.
        edge_middleware(settings, dev_principal, gateway_metrics),
    ]
    app.middlewares.extend(chain)


def _subject(request: web.Request) -> str | None:
    principal = request.get(PRINCIPAL)
    return principal.subject if principal is not None else None
