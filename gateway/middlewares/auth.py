"""Authentication: every non-public route needs a valid bearer token (or explicit dev mode).

Failures are raised as GatewayErrors (401 + WWW-Authenticate); the audit middleware records them
as `authentication` events. The token itself is never logged or stored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.edge import WELL_KNOWN
from gateway.errors import auth_error
from gateway.keys import AUTH_CHALLENGE, AUTHENTICATOR, PRINCIPAL
from gateway.metrics import GatewayMetrics
from shared.auth import AuthError, authorization_header

# Liveness, API info and metrics stay open so orchestrators and scrapers need no token.
PUBLIC_PATHS = frozenset({"/", "/health", "/readyz", "/metrics"})


async def authenticate(request: web.Request, dev_principal: Any | None, metrics: GatewayMetrics) -> None:
    """Set `request[PRINCIPAL]`: the fixed dev principal, else the app's Authenticator's answer;
    public paths need none. Raises the 401 (with its challenge) when the token does not do."""
    path = request.path
    if path in PUBLIC_PATHS or path.startswith(WELL_KNOWN):  # RFC 9728: where to get a token
        return
    if dev_principal is not None:
        request[PRINCIPAL] = dev_principal
        return
    try:
        principal = await request.app[AUTHENTICATOR].authenticate(authorization_header(request.headers))
    except AuthError as exc:
        metrics.auth_failures.labels(exc.error).inc()
        err = auth_error(exc)
        challenge = request.app.get(AUTH_CHALLENGE)  # the MCP endpoints name their RFC 9728 metadata
        if challenge is not None:
            challenge(request, exc, err.headers)
        raise err from None
    request[PRINCIPAL] = principal
