"""Gateway middlewares, one per module, installed in one place in a deliberate order."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import REQUEST_ID
from gateway.metrics import GatewayMetrics
from gateway.middlewares.audit import audit_middleware
from gateway.middlewares.auth import PUBLIC_PATHS, auth_middleware
from gateway.middlewares.body_limit import body_limit_middleware
from gateway.middlewares.errors import error_body, errors_middleware
from gateway.middlewares.read_timeout import read_timeout_middleware
from shared.logging import request_id_middleware
from shared.metrics import HttpMetrics, metrics_middleware

__all__ = ["PUBLIC_PATHS", "error_body", "install"]


def install(
    app: web.Application,
    *,
    http_metrics: HttpMetrics,
    gateway_metrics: GatewayMetrics,
    dev_principal: Any | None,
    max_body_bytes: int,
    body_timeout: float = 30.0,
) -> None:
    """Install the middlewares, outermost first."""
    chain = [
        # 1. The id first, so every log line and the audit event of this request carry it.
        request_id_middleware(REQUEST_ID),
        # 2. Metrics see the final status of everything, including rejected requests.
        metrics_middleware(http_metrics),
        # 3. Audit outside the error mapping: it records the status the caller really got.
        audit_middleware(),
        # 4. Errors: everything inside raises, this turns it into the JSON error body.
        errors_middleware(),
        # 5. Oversized bodies are refused before any work (and before token validation).
        body_limit_middleware(max_body_bytes),
        # 6. Security last before the handler: no handler runs without a principal.
        auth_middleware(dev_principal, gateway_metrics),
        # 7. Bodies read within a deadline, after auth: only a caller with a valid token gets one read.
        read_timeout_middleware(body_timeout),
    ]
    app.middlewares.extend(chain)
