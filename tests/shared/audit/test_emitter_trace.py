"""The audit emit inside a traced request: trace id on the row, an `audit.emit` span, the caller's event untouched."""

from __future__ import annotations

import io

from shared.audit.emitter import AuditEmitter, redact_event
from shared.audit.event import AuditEvent
from shared.jsonutil import loads
from shared.redact import REDACTED
from shared.tracing import Tracer
from shared.tracing.otlp import span_json


def test_traced_emit_adds_the_trace_id_without_changing_the_callers_event() -> None:
    stream = io.StringIO()
    emitter = AuditEmitter("gateway", stdout=True, stream=stream)  # not started: written through
    plain = AuditEvent("tool_call", "gateway", subject="u", tool="echo")
    secret = AuditEvent("tool_call", "gateway", subject="u", tool="echo", parameters={"password": "hunter2"})
    assert redact_event(plain, emitter._keys) is plain  # nothing to redact: the caller's own object
    assert redact_event(secret, emitter._keys) is not secret  # redaction's copy
    tracer = Tracer("gateway", 1.0)
    with tracer.server_span("POST /mcp", None) as server:
        emitter.emit(plain)
        emitter.emit(secret)
    rows = [loads(line) for line in stream.getvalue().splitlines()]
    assert [r["extra"]["trace_id"] for r in rows] == [server.trace_id] * 2
    assert "hunter2" not in stream.getvalue()
    assert plain.extra is None and secret.extra is None and secret.parameters == {"password": "hunter2"}
    spans = [span_json(s) for s in tracer.buffer]
    assert [s["name"] for s in spans] == ["audit.emit", "audit.emit", "POST /mcp"]
    assert all(s["parentSpanId"] == server.span_id for s in spans[:2])


def test_an_owned_event_is_redacted_in_place_traced_or_not() -> None:
    stream = io.StringIO()
    emitter = AuditEmitter("gateway", stdout=True, stream=stream)
    events = [AuditEvent("tool_call", "gateway", parameters={"password": "hunter2"}, extra={"http": "POST /x"})
              for _ in range(2)]
    emitter.emit(events[0], owned=True)
    with Tracer("gateway", 1.0).server_span("POST /mcp", None) as server:
        emitter.emit(events[1], owned=True)
    assert [e.parameters for e in events] == [{"password": REDACTED}] * 2  # the row's values, no copy
    assert events[1].extra == {"http": "POST /x", "trace_id": server.trace_id}
    assert "hunter2" not in stream.getvalue()
