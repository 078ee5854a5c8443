"""Errors the gateway answers with; every one becomes `{"error": {"code", "message", ...details}}`.

    GatewayError (status, code, message)
    ├── BadRequest          400 bad_request        malformed JSON, missing or wrong-typed field
    ├── Unauthorized        401 unauthorized       no/invalid token (carries WWW-Authenticate)
    ├── Forbidden           403 forbidden          not permitted
    │   └── Denied          403 forbidden          the PDP said no; message = its safe reason,
    │                                              details = decision_id, policy_version, statement
    ├── NotFound            404 not_found          unknown server or tool
    ├── RequestTimeout      408 request_timeout    body not received within body_timeout
    ├── PayloadTooLarge     413 payload_too_large  body over max_body_bytes
    ├── BadGateway          502 upstream_error     backend failed or answered garbage
    ├── PdpUnavailable→503  503 pdp_unavailable    fail closed: nothing was forwarded
    ├── Overloaded          503 overloaded         the caller's share of a backend is in use, or the streams' pool is full
    ├── GatewayTimeout      504 upstream_timeout   backend too slow
    └── calls.admit.Refused                        a call not admitted (after the PDP, before forwarding)
        ├── UnknownTool          404 not_found                tool not in the backend's catalog
        ├── InvalidArguments     400 invalid_arguments        arguments fail the tool's inputSchema
        └── UncheckableSchema    502 unsupported_tool_schema  the backend's schema cannot be checked

Errors raised by the auth, PEP and upstream packages are mapped here by `to_gateway_error`, so
handlers may let them propagate. They are imported by name: a rename fails at import, never
silently turns a 502/503/504 into a 500.
"""

from __future__ import annotations

import asyncio
import logging

from gateway.pep import PdpUnavailable
from gateway.upstream.errors import UpstreamError, UpstreamTimeout
from shared.auth.errors import AuthError, www_authenticate
from shared.authzen import Decision

log = logging.getLogger(__name__)


class GatewayError(Exception):
    """An error with an HTTP status, a stable code and a message safe to show the caller."""

    status = 500
    code = "internal_error"

    def __init__(
        self, message: str, *, headers: dict[str, str] | None = None, details: dict[str, object] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}
        # Extra members of the error object (a denial's decision_id and statement), safe to show.
        self.details = details or {}

    def __init_subclass__(cls, *, status: int, code: str, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.status, cls.code = status, code


# One line each: a subclass is nothing but its status and stable code (see the tree above).
class BadRequest(GatewayError, status=400, code="bad_request"): ...
class Unauthorized(GatewayError, status=401, code="unauthorized"): ...
class Forbidden(GatewayError, status=403, code="forbidden"): ...
class NotFound(GatewayError, status=404, code="not_found"): ...
class RequestTimeout(GatewayError, status=408, code="request_timeout"): ...
class PayloadTooLarge(GatewayError, status=413, code="payload_too_large"): ...
class BadGateway(GatewayError, status=502, code="upstream_error"): ...
class ServiceUnavailable(GatewayError, status=503, code="pdp_unavailable"): ...
class Overloaded(GatewayError, status=503, code="overloaded"): ...
class GatewayTimeout(GatewayError, status=504, code="upstream_timeout"): ...


class Denied(Forbidden, status=403, code="forbidden"):
    """A PDP denial (`decision`); each protocol answers it its own way (403, isError, −32003)."""

    def __init__(self, decision: Decision, fallback: str) -> None:
        details: dict[str, object] = {k: v for k, v in (("decision_id", decision.decision_id), ("policy_version", decision.policy_version),
                                     ("statement", decision.statement)) if v}
        super().__init__(decision.reason or fallback, details=details)
        self.decision = decision


def to_gateway_error(exc: BaseException) -> GatewayError | None:
    """The GatewayError for an exception from auth, PEP or upstream; None if not one of ours."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, PdpUnavailable):
        return ServiceUnavailable("policy decision point unavailable; request denied (fail closed)")
    # UpstreamTimeout may subclass UpstreamError, so it is checked first.
    if isinstance(exc, UpstreamTimeout):
        return GatewayTimeout(str(exc) or "backend timed out")
    if isinstance(exc, UpstreamError):
        if exc.http_status == 503:  # SubjectBusy (the gateway's fairness limit) or StreamsExhausted
            return Overloaded(str(exc))
        return BadGateway(str(exc) or "backend failed")
    if isinstance(exc, AuthError):
        return auth_error(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return GatewayTimeout("backend timed out")
    return None


_BY_STATUS: dict[int, type[GatewayError]] = {
    cls.status: cls for cls in (BadRequest, Unauthorized, Forbidden, ServiceUnavailable)
}


def auth_error(exc: AuthError) -> GatewayError:
    """The AuthError's status (401 mostly) with the RFC 6750 WWW-Authenticate header."""
    status = exc.status
    err = _BY_STATUS.get(status, Unauthorized)(exc.description or "authentication failed")
    # The RFC 6750 code tells clients what to do; a 503 means the IdP keys were unreachable.
    err.code = "auth_unavailable" if status == 503 else (exc.error or err.code)
    if status in (401, 403):
        err.headers["WWW-Authenticate"] = www_authenticate(exc)
    return err
