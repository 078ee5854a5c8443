"""One evaluation end to end: engine decision, metrics, audit event, AuthZEN answer."""

from __future__ import annotations

import random
import time
import uuid
from typing import Any

from aiohttp import web

from pdp.keys import METRICS, SETTINGS, SHADOW
from pdp.policy import Request
from pdp.policy.naming import resource_string
from pdp.state import Active
from shared.audit import AuditEvent
from shared.authzen import decision_answer
from shared.keys import AUDIT
from shared.logging import caller_request_id, request_id_var


def evaluate(app: web.Application, active: Active, req: Request, ctx: dict[str, Any], remote: str | None) -> dict[str, Any]:
    """Decide, count, audit; return the answer body."""
    metrics = app[METRICS]
    start = time.perf_counter()
    outcome = active.engine.decide(req)
    metrics.latency.observe(time.perf_counter() - start)
    metrics.decisions.labels("allow" if outcome.allowed else "deny").inc()
    metrics.cache.labels("hit" if outcome.cached else "miss").inc()
    shadow = app.get(SHADOW)
    if shadow is not None:
        shadow.offer(active.engine, req, outcome.statement)
    if req.action == "invoke_tool" and req.tool:
        metrics.tool_decision(req.server, req.tool, outcome.allowed)
    decision_id = uuid.uuid4().hex
    stmt = outcome.statement
    reason = stmt.reason()
    audit = app.get(AUDIT)
    if audit is not None and (not outcome.allowed or _sampled(app)):
        audit.emit(AuditEvent(
            event_type="policy_decision", service="pdp", subject=req.subject, roles=list(req.roles),
            action=req.action, mcp_server=req.server, tool=req.tool, resource=resource_string(req),
            decision="allow" if outcome.allowed else "deny", reason=reason, policy_version=active.version,
            decision_id=decision_id, request_id=request_id_var.get(),
            client_addr=_text(ctx.get("client_addr")) or remote,
            status="success" if outcome.allowed else "denied",
            extra={"statement": stmt.describe(), "groups": list(req.groups),
                   **caller_request_id(_text(ctx.get("request_id")))},
        ))
    return decision_answer(outcome.allowed, decision_id, active.version, reason, stmt.describe())


def _sampled(app: web.Application) -> bool:
    rate = app[SETTINGS].audit_allow_sample
    return rate >= 1.0 or (rate > 0.0 and random.random() < rate)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else (str(value) if isinstance(value, int) else None)
