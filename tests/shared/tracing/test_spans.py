"""Spans and the Tracer without HTTP: ids, parent links, parent-based sampling, the bounded buffer."""

from __future__ import annotations

import gc
import re

import pytest

from shared import tracing
from shared.tracing.otlp import span_json
from shared.tracing.spans import CLIENT, INTERNAL, SERVER, Tracer
from shared.tracing.traceparent import Parent, parse

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


def names(tracer: Tracer) -> list[str]:
    return [span_json(s)["name"] for s in tracer.buffer]


def test_off_is_one_shared_no_op() -> None:
    assert tracing.current_span.get() is None
    assert tracing.span("x") is tracing.OFF
    with tracing.span("x", True, {"a": 1}) as sp:
        assert sp is None
    headers: dict[str, str] = {}
    tracing.inject(headers)
    assert headers == {} and tracing.current_trace_id() is None


def test_new_trace_and_children() -> None:
    tracer = Tracer("gateway", 1.0)
    server = tracer.server_span("POST /mcp", None)
    assert re.fullmatch("[0-9a-f]{32}", server.trace_id) and re.fullmatch("[0-9a-f]{16}", server.span_id)
    assert server.parent_id is None and server.kind == SERVER and server.sampled
    with server:
        assert tracing.current_trace_id() == server.trace_id
        with tracing.span("backend a", True, {"mcp.server": "a"}) as client:
            assert client.parent_id == server.span_id and client.kind == CLIENT
            assert tracing.current_span.get() is client
            headers: dict[str, str] = {}
            tracing.inject(headers)  # the callee's parent is the client span, not the server span
            assert parse([headers["traceparent"]]) == Parent(server.trace_id, client.span_id, True)
        assert tracing.current_span.get() is server
        with tracing.span("auth.verify_token") as internal:
            assert internal.kind == INTERNAL and internal.parent_id == server.span_id
    assert tracing.current_span.get() is None
    assert names(tracer) == ["backend a", "auth.verify_token", "POST /mcp"]
    recorded = [span_json(s) for s in tracer.buffer]
    assert all(int(s["endTimeUnixNano"]) >= int(s["startTimeUnixNano"]) > 0 for s in recorded)
    assert len({s["spanId"] for s in recorded}) == 3
    assert recorded[0]["attributes"] == [{"key": "mcp.server", "value": {"stringValue": "a"}}]


def test_continues_the_callers_trace_and_tracestate() -> None:
    tracer = Tracer("pdp", 1.0)
    with tracer.server_span("POST /access/v1/evaluation", Parent(TRACE, SPAN, True), "congo=t61rcWkgMzE") as sp:
        headers: dict[str, str] = {}
        tracing.inject(headers)
    assert (sp.trace_id, sp.parent_id, sp.remote_parent) == (TRACE, SPAN, True)
    assert headers == {"traceparent": f"00-{TRACE}-{sp.span_id}-01", "tracestate": "congo=t61rcWkgMzE"}


def test_an_exception_marks_the_span_by_type_only() -> None:
    tracer = Tracer("gateway", 1.0)
    with pytest.raises(RuntimeError), tracer.server_span("r", None), tracing.span("backend"):
        raise RuntimeError("token=secret")
    assert span_json(tracer.buffer[0])["status"] == {"code": 2, "message": "RuntimeError"}
    assert tracing.current_span.get() is None


def test_parent_based_sampling() -> None:
    never, always = Tracer("g", 0.0), Tracer("g", 1.0)
    # A caller's decision wins over the ratio, both ways.
    with never.server_span("r", Parent(TRACE, SPAN, True)), tracing.span("c"):
        pass
    with always.server_span("r", Parent(TRACE, SPAN, False)) as sp, tracing.span("c") as child:
        headers: dict[str, str] = {}
        tracing.inject(headers)
    assert len(never.buffer) == 2 and always.buffer == []
    assert not child.sampled and headers["traceparent"] == f"00-{TRACE}-{child.span_id}-00"
    assert sp.trace_id == TRACE  # unsampled, the trace id still reaches logs and callees


def test_ratio_samples_by_the_trace_ids_low_bits() -> None:
    tracer = Tracer("g", 0.25)
    spans = [tracer.server_span("r", None) for _ in range(400)]
    bound = 1 << 62
    assert all(s.sampled == (int(s.trace_id[16:], 16) < bound) for s in spans)
    assert any(s.sampled for s in spans) and not all(s.sampled for s in spans)
    assert not any(Tracer("g", 0.0).server_span("r", None).sampled for _ in range(100))


def test_waiting_spans_are_invisible_to_the_garbage_collector() -> None:
    tracer = Tracer("g", 1.0)
    with tracer.server_span("r", None, attributes={"http.route": "/x"}), tracing.span("c", True, {"n": 1}):
        pass
    gc.collect()
    assert not any(gc.is_tracked(s) for s in tracer.buffer)


def test_full_buffer_drops_and_counts_never_blocks() -> None:
    dropped: list[int] = []
    tracer = Tracer("g", 1.0, capacity=3, batch_size=2, on_drop=dropped.append)
    for i in range(5):
        with tracer.server_span(f"r{i}", None):
            pass
        assert tracer.ready.is_set() == (i >= 1)  # a full batch wakes the exporter
    assert names(tracer) == ["r0", "r1", "r2"]
    assert tracer.dropped == 2 and dropped == [1, 1]
    assert [span_json(s)["name"] for s in tracer.take()] == ["r0", "r1"]  # oldest first, one batch
    assert [span_json(s)["name"] for s in tracer.take()] == ["r2"] and tracer.take() == []


def test_ids_cut_from_the_pool_are_valid_and_distinct_across_refills() -> None:
    tracer = Tracer("g", 1.0)
    servers = [tracer.server_span("r", None) for _ in range(300)]  # 32 digits each: several pools
    spans = servers + [s.child("c") for s in servers for _ in range(2)]
    assert all(re.fullmatch("[0-9a-f]{32}", s.trace_id) for s in servers)
    assert all(re.fullmatch("[0-9a-f]{16}", s.span_id) for s in spans)
    assert len({s.trace_id for s in servers}) == 300 and len({s.span_id for s in spans}) == 900


def test_ids_come_from_the_os_csprng_one_call_per_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trace and span ids are cut from os.urandom (not Python's guessable Mersenne Twister)."""
    calls: list[int] = []

    def urandom(n: int) -> bytes:
        calls.append(n)
        return bytes([0xAB]) * n

    monkeypatch.setattr("shared.tracing.spans.os.urandom", urandom)
    tracer = Tracer("g", 1.0)
    server = tracer.server_span("r", None)
    children = [server.child("c") for _ in range(100)]
    assert server.trace_id == "ab" * 16 and all(c.span_id == "ab" * 8 for c in children)
    assert calls == [2048]  # 4,096 hex digits: the trace id and 100 span ids from one syscall


def test_an_all_zero_draw_never_becomes_an_id() -> None:
    tracer = Tracer("g", 1.0)
    tracer.pool, tracer.drawn = "0" * 64, 0  # what a (2**-128 likely) all-zero draw would give
    server = tracer.server_span("r", None)
    child = server.child("c")
    assert server.trace_id == "0" * 31 + "1" and child.span_id == "0" * 15 + "1"
    assert server.sampled  # ratio 1.0 samples whatever the id


def test_an_outgoing_span_is_named_by_the_traceparent_it_adds_and_is_not_current() -> None:
    tracer = Tracer("gateway", 1.0)
    server = tracer.server_span("POST /mcp", Parent(TRACE, SPAN, True), "vendor=x")
    with server:
        headers: dict[str, str] = {}
        client, start = tracing.outgoing(server, headers)
        assert tracing.current_span.get() is server  # nothing below it opens a span
        assert parse([headers["traceparent"]]) == Parent(TRACE, client, True)
        assert headers["tracestate"] == "vendor=x"
        server.record_rendered(client, start, tracing.child_tail({}, "a", "backend a", CLIENT, ("mcp.server", "a")))
    (recorded, _) = [span_json(s) for s in tracer.buffer]
    assert recorded["spanId"] == client and recorded["startTimeUnixNano"] == str(start)
    assert recorded["parentSpanId"] == server.span_id and recorded["kind"] == CLIENT
    assert recorded["name"] == "backend a" and recorded["traceState"] == "vendor=x"
    assert recorded["attributes"] == [{"key": "mcp.server", "value": {"stringValue": "a"}}]


def test_a_child_recorded_without_a_span_object() -> None:
    tracer = Tracer("gateway", 1.0)
    server = tracer.server_span("POST /mcp", None)
    tail = tracing.child_tail({}, "tool_call", "audit.emit", INTERNAL, ("audit.event_type", "tool_call"))
    server.record_rendered(None, 5, tail, "ValueError")
    (child,) = [span_json(s) for s in tracer.buffer]
    assert child["traceId"] == server.trace_id and child["parentSpanId"] == server.span_id
    assert child["spanId"] != server.span_id and re.fullmatch("[0-9a-f]{16}", child["spanId"])
    assert child["name"] == "audit.emit" and child["kind"] == INTERNAL and child["startTimeUnixNano"] == "5"
    assert child["status"] == {"code": 2, "message": "ValueError"}
    unsampled = Tracer("gateway", 0.0)
    unsampled.server_span("POST /mcp", None).record_rendered(None, 5, tail)
    assert unsampled.buffer == []


def test_a_child_recorded_with_its_tail_kept_by_the_caller() -> None:
    tracer = Tracer("gateway", 1.0)
    server = tracer.server_span("POST /mcp", Parent(TRACE, SPAN, True), "vendor=x")
    memo: dict[str, str] = {}
    for error in (None, "TimeoutError"):
        found = memo.get("tools/call") or tracing.child_tail(memo, "tools/call", "backend a", CLIENT,
                                                             ("mcp.server", "a", "mcp.method", "tools/call"))
        span_id, start = tracing.outgoing(server, {})
        server.record_rendered(span_id, start, found, error)
    assert list(memo) == ["tools/call"]  # rendered once
    ok, failed = (span_json(s) for s in tracer.buffer)
    for child in (ok, failed):
        assert child["traceId"] == TRACE and child["parentSpanId"] == server.span_id and child["kind"] == CLIENT
        assert child["name"] == "backend a" and child["traceState"] == "vendor=x"
        assert child["attributes"][1] == {"key": "mcp.method", "value": {"stringValue": "tools/call"}}
    assert "status" not in ok and failed["status"] == {"code": 2, "message": "TimeoutError"}
