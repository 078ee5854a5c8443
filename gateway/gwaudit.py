"""Audit events for gateway requests: handlers fill an `AuditInfo`, the audit middleware emits it.

Built only from what handlers record and the principal's subject and roles: never a token or credential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.audit import AuditEvent
from shared.authzen import Decision

EVENT_REQUEST = "mcp_request"
EVENT_DENIED = "policy_violation"
EVENT_AUTH = "authentication"


@dataclass(slots=True, eq=False)
class AuditInfo:
    """What one request did, recorded by handlers as they go (mutable on purpose: one per request)."""

    action: str | None = None
    mcp_server: str | None = None
    tool: str | None = None
    parameters: Any = None
    decision: Decision | None = None
    denied: bool = False  # a policy said no (the event becomes a policy_violation)
    not_found: bool = False  # allowed, but the target does not exist: nothing forwarded, decision "deny"
    error: str | None = None
    tool_failed: bool = False  # the call was answered, but failed (isError; no broadcast target succeeded)
    extra: dict[str, Any] | None = None

    def note(self, **extra: Any) -> None:
        """Add fields to the event's `extra` (targets, counts, ...)."""
        if self.extra is None:
            self.extra = {}
        self.extra.update(extra)


def classify(http_status: int, info: AuditInfo) -> tuple[str, str]:
    """(event_type, status) for a finished request."""
    if http_status == 401:
        return EVENT_AUTH, "denied"
    if info.denied or (http_status == 403 and info.decision is not None):
        return EVENT_DENIED, "denied"
    if http_status == 403:
        return EVENT_AUTH, "denied"  # valid token without a required scope
    if http_status >= 400 or info.tool_failed:
        return EVENT_REQUEST, "error"
    return EVENT_REQUEST, "success"


def decision_word(info: AuditInfo) -> str | None:
    """"allow"/"deny" from the recorded decision (None when the PDP was not asked); "deny" for an
    allowed target that does not exist (nothing was forwarded)."""
    if info.not_found:
        return "deny"
    if info.decision is None:
        return "deny" if info.denied else None
    return "allow" if info.decision.allowed and not info.denied else "deny"


def build_event(info: AuditInfo, *, http_status: int, duration_ms: float, subject: str | None,
                roles: tuple[str, ...] | list[str] | None, request_id: str | None, client_addr: str | None,
                method: str, path: str, caller_request_id: str | None = None) -> AuditEvent:
    """The one audit event for a finished gateway request (`request_id` ours; the caller's apart)."""
    event_type, status = classify(http_status, info)
    decision = info.decision
    extra = dict(info.extra) if info.extra else {}
    extra["http"] = f"{method} {path}"
    if caller_request_id:
        extra["caller_request_id"] = caller_request_id
    resource = None
    if info.mcp_server is not None:
        resource = f"mcp:{info.mcp_server}:{info.tool}" if info.tool else f"mcp:{info.mcp_server}:*"
    return AuditEvent(
        event_type=event_type,
        service="gateway",
        subject=subject,
        roles=list(roles) if roles else None,
        action=info.action,
        mcp_server=info.mcp_server,
        tool=info.tool,
        resource=resource,
        decision=decision_word(info),
        reason=decision.reason if decision is not None else None,
        status=status,
        http_status=http_status,
        duration_ms=round(duration_ms, 3),
        parameters=info.parameters,
        error=info.error,
        request_id=request_id,
        decision_id=decision.decision_id if decision is not None else None,
        policy_version=decision.policy_version if decision is not None else None,
        client_addr=client_addr,
        extra=extra,
    )
