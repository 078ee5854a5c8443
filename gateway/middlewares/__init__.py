"""Gateway middlewares, one per module, installed in one place in a deliberate order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway.keys import PRINCIPAL, REQUEST_ID
from gateway.metrics import GatewayMetrics
from gateway.middlewares.audit import audit_middleware
from gateway.middlewares.auth import PUBLIC_PATHS
from gateway.middlewares.edge import edge_middleware
from gateway.middlewares.errors import error_body, errors_middleware
from gateway.middlewares.headers import server_limits
from gateway.middlewares.json_limits import JsonLimits
from shared.access_log import observe_middleware
from shared.logging import request_id_middleware
from shared.metrics import HttpMetrics

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
        # 2. The access line and the HTTP metrics (one middleware) see the final status of
        #    everything, rejected requests included, and the subject the auth step found.
        observe_middleware(access_level, _subject, http_metrics),
        # 3. Audit outside the error mapping: it records the status the caller really got.
        audit_middleware(),
        # 4. Errors: everything inside raises, this turns it into the JSON error body.
        errors_middleware(),
        # 5. The edge, one middleware running its checks in this order (gateway/middlewares/edge.py):
        #    duplicated or oversized security headers (before anything reads them), a declared body
        #    over the limit, the browser guard (CSRF, DNS rebinding; before the token and in no-auth
        #    mode too), authentication (no handler without a principal), then the body read once
        #    within a deadline and its JSON shape checked, after auth so only a caller with a valid
        #    token gets one read.
        edge_middleware(
            max_header_bytes=max_header_bytes, max_body_bytes=max_body_bytes, allowed_origins=allowed_origins,
            dev_principal=dev_principal, metrics=gateway_metrics, json_limits=json_limits or JsonLimits(),
            body_timeout=body_timeout,
        ),
    ]
    app.middlewares.extend(chain)


def _subject(request: web.Request) -> str | None:
    principal = request.get(PRINCIPAL)
    return principal.subject if principal is not None else None
