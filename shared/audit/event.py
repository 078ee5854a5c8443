"""The audit event: one schema, a JSON form compatible with the old gateway, and a table row."""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from shared.jsonutil import dumps_str, loads

SERVICES = ("gateway", "pdp")

# Column order of `audit_events` used by COPY (the `id` column is filled by its sequence).
COLUMNS = (
    "event_id", "ts", "service", "event_type", "request_id", "decision_id", "subject", "roles",
    "action", "mcp_server", "tool", "resource", "decision", "reason", "policy_version", "status",
    "http_status", "duration_ms", "parameters", "error", "client_addr", "extra",
)

# JSON name -> attribute, where the old gateway's names differ from ours. Users' jq filters rely on
# the JSON names (`user`, `tool_name`, `policy_decision`, `response_status`), so they never change.
LEGACY_NAMES = {
    "timestamp": "ts",
    "user": "subject",
    "tool_name": "tool",
    "policy_decision": "decision",
    "response_status": "http_status",
}
_ATTR_TO_JSON = {attr: name for name, attr in LEGACY_NAMES.items()}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audited fact. `decision` is "allow"/"deny"; `status` is "success"/"error"/"denied"."""

    event_type: str
    service: str
    subject: str | None = None
    action: str | None = None
    mcp_server: str | None = None
    tool: str | None = None
    resource: str | None = None
    decision: str | None = None
    reason: str | None = None
    status: str | None = None
    http_status: int | None = None
    duration_ms: float | None = None
    parameters: Any = None
    error: str | None = None
    request_id: str | None = None
    decision_id: str | None = None
    policy_version: str | None = None
    roles: list[str] | None = None
    client_addr: str | None = None
    extra: dict[str, Any] | None = None
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    ts: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        # A wrong service would be rejected by the table's CHECK much later, far from the bug.
        if self.service not in SERVICES:
            raise ValueError(f"audit service must be one of {SERVICES}, got {self.service!r}")
        if not self.event_type:
            raise ValueError("audit event_type is required")

    def replace(self, **changes: Any) -> AuditEvent:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def _with(self, changes: dict[str, Any]) -> AuditEvent:
        """A copy with `changes` applied, skipping __init__ (the emitter's hot path).

        Only for changes that cannot invalidate the event (redacted values); `dataclasses.replace`
        costs several times more per event, which showed up first in the ingest profile.
        """
        new = object.__new__(AuditEvent)
        for name in _FIELD_NAMES:
            object.__setattr__(new, name, changes[name] if name in changes else getattr(self, name))
        return new

    def to_json_dict(self) -> dict[str, Any]:
        """The JSONL/stdout form: the old gateway's field names first, then the new fields."""
        out: dict[str, Any] = {
            "timestamp": self.ts.isoformat(),
            "event_type": self.event_type,
            "user": self.subject,
            "action": self.action,
            "mcp_server": self.mcp_server,
            "tool_name": self.tool,
            "parameters": self.parameters,
            "status": self.status,
            "policy_decision": self.decision,
            "duration_ms": self.duration_ms,
            "response_status": self.http_status,
            "event_id": str(self.event_id),
        }
        out.update(zip(_REST_NAMES, _rest(self), strict=True))
        return out

    @classmethod
    def from_json_dict(cls, data: dict[str, Any]) -> AuditEvent:
        """Inverse of `to_json_dict` (spool replay, tests); unknown keys are an error."""
        kwargs: dict[str, Any] = {}
        names = {f.name for f in dataclasses.fields(cls)}
        for key, value in data.items():
            attr = LEGACY_NAMES.get(key, key)
            if attr not in names:
                raise ValueError(f"unknown audit field {key!r}")
            kwargs[attr] = value
        kwargs["event_id"] = uuid.UUID(str(kwargs["event_id"]))
        kwargs["ts"] = datetime.fromisoformat(kwargs["ts"])
        return cls(**kwargs)

    def to_row(self) -> tuple[Any, ...]:
        """The values in `COLUMNS` order for COPY (jsonb columns as JSON text)."""
        return (
            self.event_id, self.ts, self.service, self.event_type, self.request_id,
            self.decision_id, self.subject, self.roles, self.action, self.mcp_server, self.tool,
            self.resource, self.decision, self.reason, self.policy_version, self.status,
            self.http_status, self.duration_ms,
            None if self.parameters is None else dumps_str(self.parameters),
            self.error, self.client_addr,
            None if self.extra is None else dumps_str(self.extra),
        )

    @classmethod
    def from_row(cls, row: Any) -> AuditEvent:
        """Build an event from an `audit_events` record (the CLI reads these back)."""
        values = {name: row[name] for name in COLUMNS}
        for name in ("parameters", "extra"):
            if isinstance(values[name], str):
                values[name] = loads(values[name])
        if values["roles"] is not None:
            values["roles"] = list(values["roles"])
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(AuditEvent))
# (attribute, JSON name) of every field, computed once: `dataclasses.fields()` per event showed
# in the gateway's per-call profile.
_JSON_NAMES = tuple((name, _ATTR_TO_JSON.get(name, name)) for name in _FIELD_NAMES)
# The fields `to_json_dict` does not name first, in field order, read with one attrgetter call.
_FIRST = frozenset({"ts", "event_type", "subject", "action", "mcp_server", "tool", "parameters", "status", "decision",
                    "duration_ms", "http_status", "event_id"})
_REST_NAMES = tuple(name for attr, name in _JSON_NAMES if attr not in _FIRST)
_rest = attrgetter(*(attr for attr, _ in _JSON_NAMES if attr not in _FIRST))
