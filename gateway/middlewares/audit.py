"""Audit: one event per non-public request with its final status, a `Recorder` of the
request-outcome middleware (shared/outcome.py, outside the errors middleware). `emit` never waits."""

from __future__ import annotations

import time

from aiohttp import web

from gateway.gwaudit import AuditInfo, build_event
from gateway.keys import AUDIT_INFO, PRINCIPAL, REQUEST_ID
from gateway.middlewares.auth import PUBLIC_PATHS
from shared.keys import AUDIT
from shared.logging import caller_request_id_var
from shared.outcome import Recorder


def audit_recorder() -> Recorder:
    """The request's AuditInfo (handlers fill it) and, once it finished, its event through the
    app's emitter (`shared.keys.AUDIT`); public paths and an app without an emitter emit nothing."""

    def finish(request: web.Request, info: AuditInfo, status: int, start: float) -> None:
        emitter = request.app.get(AUDIT)
        if emitter is None or request.path in PUBLIC_PATHS:
            return
        principal = request.get(PRINCIPAL)
        emitter.emit(build_event(  # built here for this emit only: redacted in place (owned)
            info,
            http_status=status,
            duration_ms=(time.perf_counter() - start) * 1000,
            subject=principal.subject if principal is not None else None,
            roles=principal.roles if principal is not None else None,
            request_id=request.get(REQUEST_ID),
            caller_request_id=caller_request_id_var.get(),
            client_addr=request.remote,
            method=request.method,
            path=request.path,
        ), owned=True)

    return Recorder(AUDIT_INFO, AuditInfo, finish)
