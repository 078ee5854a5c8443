"""Gateway middlewares, one per module, installed in one place in a deliberate order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway.keys import PRINCIPAL, REQUEST_ID
from gateway.metrics import GatewayMetrics
from gateway.middlewares.audit import audit_middleware
from gateway.middlewares.auth import PUBLIC_PATHS, auth_middleware
from gateway.middlewares.body_limit import body_limit_middleware
from gateway.middlewares.browser import browser_middleware
from gateway.middlewares.errors import error_body, errors_middleware
from gateway.middlewares.headers import headers_middleware, server_limits
from gateway.middlewares.json_limits import JsonLimits, json_limits_middleware
from shared.access_log import access_log_middleware
from shared.logging import request_id_middleware
from shared.metrics import HttpMetrics, metrics_middleware

__all__ = ["PUBLIC_PATHS", "JsonLimits", "error_body", "install", "server_limits"]


def install(
    app: web.Application,
    *,
    http_metrics: HttpMetrics,
    gateway_metrics: GatewayMetrics,
    dev_principal: Any | None,
    max_body_bytes: int,
    max_header_bytes: int,
    allowed_origins: Sequence[str],
    json_limits: JsonLimits | None = None,
    body_timeout: float = 30.0,
    access_level: str = "INFO",
    tracing: Any | None = None,
) -> None:
    """Install the middlewares, outermost first."""
    chain = [
        # 1. The id first, so every log line and the audit event of this request carry it.
        request_id_middleware(REQUEST_ID),
        # 1a. Tracing (only when configured): the trace id is in every line below, the access line too.
        *([tracing] if tracing is not None else []),
        # 1b. The access line sees the final status and the subject the auth step found.
        access_log_middleware(access_level, _subject),
        # 2. Metrics see the final status of everything, including rejected requests.
        metrics_middleware(http_metrics),
        # 3. Audit outside the error mapping: it records the status the caller really got.
        audit_middleware(),
        # 4. Errors: everything inside raises, this turns it into the JSON error body.
        errors_middleware(),
        # 5. Duplicated security headers (two Authorization, two Mcp-Session-Id) and oversized
        #    ones are refused before anything reads them, so no later step can pick "the first".
        headers_middleware(max_header_bytes),
        # 6. Oversized bodies are refused before any work (and before token validation).
        body_limit_middleware(max_body_bytes),
        # 7. Browser guard (CSRF, DNS rebinding): a foreign Origin or a non-JSON state-changing
        #    REST request stops here, before the token is looked at and in no-auth mode too.
        browser_middleware(allowed_origins),
        # 8. Authentication last before the handler: no handler runs without a principal.
        auth_middleware(dev_principal, gateway_metrics),
        # 9. Bodies read once within a deadline (slow-body guard: 408), after auth so only a caller
        #    with a valid token gets one read; JSON bodies parsed once and their shape checked
        #    (depth, string and array sizes) before any handler, PDP or backend.
        json_limits_middleware(json_limits or JsonLimits(), body_timeout),
    ]
    app.middlewares.extend(chain)


def _subject(request: web.Request) -> str | None:
    principal = request.get(PRINCIPAL)
    return principal.subject if principal is not None else None
