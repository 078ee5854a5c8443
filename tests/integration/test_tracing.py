"""Tracing end to end: one trace across gateway, PDP and backend, exported as OTLP/JSON.

A loopback OTLP collector (aiohttp) records what the services POST; every body is checked
against the official protobuf schema. The agent sends a W3C `traceparent`; the gateway continues
it, the PDP joins it (traceparent on the decision call), the backend receives it, and the trace
id is in the gateway's log lines and audit rows. A collector that is down costs nothing but
counted drops; without an endpoint nothing is installed.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import logging
import socket
from pathlib import Path
from typing import Any

from aiohttp import web

from shared.jsonutil import loads
from shared.keys import REGISTRY, TRACING
from shared.tracing.traceparent import parse
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import audit_rows, gateway_stack, start_site
from tests.integration.test_access_log import Lines
from tests.shared.tracing.test_otlp import as_proto

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
INVOKE = "/mcp/invoke?mcp_server=alpha"


class Collector:
    """POST /v1/traces: keep each body's spans as (service, span JSON) pairs, schema-checked."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.spans: list[tuple[str, dict[str, Any]]] = []
        self.content_types: list[str] = []
        self.keys: list[str | None] = []
        self.arrived = asyncio.Event()

    async def traces(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.content_types.append(request.content_type)
        self.keys.append(request.headers.get("x-collector-key"))
        as_proto(body)  # well-formed OTLP, or the export fails loudly
        for rs in loads(body)["resourceSpans"]:
            service = next(a["value"]["stringValue"] for a in rs["resource"]["attributes"] if a["key"] == "service.name")
            self.spans += [(service, s) for ss in rs["scopeSpans"] for s in ss["spans"]]
        self.arrived.set()
        return web.json_response({}, status=self.status)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        return app


def dropped(registry: Any, reason: str) -> float:
    return registry.get_sample_value("mcpgw_tracing_dropped_spans_total", {"reason": reason}) or 0.0


async def test_one_trace_across_gateway_pdp_and_backend(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    collector = Collector()
    runner, url = await start_site(collector.app())
    lines = Lines()
    logging.getLogger("mcpgw.access").addHandler(lines)
    logging.getLogger("mcpgw.access").setLevel(logging.DEBUG)
    try:
        env = {"MCPGW_OTEL_ENDPOINT": url, "OTEL_EXPORTER_OTLP_HEADERS": "x-collector-key=k%201"}
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env, pdp_env=env) as stack:
            before = len(mcp_backend.requests)
            status, body, _ = await stack.call("POST", INVOKE, headers={"traceparent": PARENT},
                                               json={"tool_name": "echo", "parameters": {"text": "traced"}})
            assert status == 200, body
            sent = [r.headers.get("traceparent", "") for r in mcp_backend.requests[before:]]
            rows = [r for r in await audit_rows(stack, pg_dsn) if r["event_type"] != "policy_change"]
            registry = stack.app[REGISTRY]
            for app in (stack.app, stack.pdp.app):  # the traced body of the request-outcome middleware
                assert any("tracing_outcome_middleware" in getattr(m, "__qualname__", "") for m in app.middlewares)
        # Leaving the stack ran both exporters' final flush (each awaited its POST).
    finally:
        logging.getLogger("mcpgw.access").removeHandler(lines)
        await runner.cleanup()

    assert set(collector.content_types) == {"application/json"} and set(collector.keys) == {"k 1"}
    spans = [(svc, s) for svc, s in collector.spans if s["traceId"] == TRACE_ID]
    names = {(svc, s["name"]) for svc, s in spans}
    by_id = {s["spanId"]: s for _, s in spans}

    def named(service: str, prefix: str) -> list[dict[str, Any]]:
        found = [s for svc, s in spans if svc == service and s["name"].startswith(prefix)]
        assert found, (service, prefix, names)
        return found

    (server,) = named("mcpgw-gateway", "POST /mcp/invoke")
    assert server["parentSpanId"] == "00f067aa0ba902b7" and server["kind"] == 2  # continues the agent's trace
    for child in ("auth.verify_token", "pdp /access/v1/", "backend alpha", "audit.emit"):
        assert {s["parentSpanId"] for s in named("mcpgw-gateway", child)} == {server["spanId"]}, child
    (pdp_client,) = named("mcpgw-gateway", "pdp /access/v1/")
    (pdp_server,) = named("mcpgw-pdp", "POST /access/v1/")
    assert pdp_server["parentSpanId"] == pdp_client["spanId"]  # joined over the wire
    # One CLIENT span per request to the backend (handshake, then the call), each named in the
    # traceparent that request carried.
    backend = named("mcpgw-gateway", "backend alpha")
    methods = {a["value"]["stringValue"] for s in backend for a in s["attributes"] if a["key"] == "mcp.method"}
    assert "tools/call" in methods and all(s["kind"] == 3 for s in backend), backend
    parents = [parse([t]) for t in sent]
    assert len(parents) == len(backend), sent
    assert all(p is not None and p.trace_id == TRACE_ID and p.sampled for p in parents), sent
    assert {p.span_id for p in parents if p} == {s["spanId"] for s in backend}
    assert all(s["parentSpanId"] in by_id or s is server for _, s in spans)  # no dangling parent
    access = [line for line in lines.lines if line.get("route") == "/mcp/invoke"]
    assert access and access[0]["trace_id"] == TRACE_ID  # the logs carry the trace id
    # ... and so does the call's audit row (any PDP row written in the request carries it too).
    assert any(r["service"] == "gateway" for r in rows), rows
    assert all(loads(r["extra"])["trace_id"] == TRACE_ID for r in rows), rows
    assert registry.get_sample_value("mcpgw_tracing_exported_spans_total") >= 5
    assert dropped(registry, "export_failed") == 0


async def test_sampling_ratio_zero_follows_the_caller(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    collector = Collector()
    runner, url = await start_site(collector.app())
    env = {"MCPGW_OTEL_ENDPOINT": url, "MCPGW_OTEL_SAMPLE_RATIO": "0"}
    try:
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env) as stack:
            before = len(mcp_backend.requests)
            status, _, _ = await stack.call("POST", INVOKE, json={"tool_name": "echo", "parameters": {"text": "a"}})
            assert status == 200
            unsampled = [parse([r.headers["traceparent"]]) for r in mcp_backend.requests[before:]]
            status, _, _ = await stack.call("POST", INVOKE, headers={"traceparent": PARENT},
                                            json={"tool_name": "echo", "parameters": {"text": "b"}})
            assert status == 200
    finally:
        await runner.cleanup()
    # A new trace at ratio 0 is not recorded, yet callees still get its (unsampled) context.
    assert unsampled and all(p is not None and not p.sampled for p in unsampled), unsampled
    assert {s["traceId"] for _, s in collector.spans} == {TRACE_ID}  # the caller's sampled trace is kept


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_collector_down_requests_unaffected_drops_counted(tmp_path: Path, pg_dsn: str,
                                                                mcp_backend: Backend) -> None:
    refusing = Collector(status=503)
    runner, url = await start_site(refusing.app())
    try:
        for endpoint in (f"http://127.0.0.1:{closed_port()}", url):  # nothing listening; answering 503
            env = {"MCPGW_OTEL_ENDPOINT": endpoint}
            async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env) as stack:
                for i in range(3):
                    status, body, _ = await stack.call("POST", INVOKE, headers={"traceparent": PARENT},
                                                       json={"tool_name": "echo", "parameters": {"text": str(i)}})
                    assert status == 200, body
                registry, tracer = stack.app[REGISTRY], stack.app[TRACING]
            assert tracer.buffer == []  # the final flush took everything ...
            assert dropped(registry, "export_failed") >= 6, endpoint  # ... and counted what it lost
            assert not registry.get_sample_value("mcpgw_tracing_exported_spans_total")
    finally:
        await runner.cleanup()
    assert refusing.spans  # the 503 collector did receive well-formed batches


async def test_no_endpoint_no_tracing(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as stack:
        for app in (stack.app, stack.pdp.app):  # the request-outcome middleware's untraced body
            names = [getattr(m, "__qualname__", "") for m in app.middlewares]
            assert not any("tracing" in n for n in names), names
            assert any(n.endswith("outcome_middleware") for n in names), names
        assert TRACING not in stack.app and TRACING not in stack.pdp.app
        assert not any(t.get_name().startswith("otlp-export") for t in asyncio.all_tasks())
        assert stack.app[REGISTRY].get_sample_value("mcpgw_tracing_buffered_spans") is None
        before = len(mcp_backend.requests)
        status, _, _ = await stack.call("POST", INVOKE, headers={"traceparent": PARENT},
                                        json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 200
        assert all("traceparent" not in r.headers for r in mcp_backend.requests[before:])
