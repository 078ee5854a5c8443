"""OpenTelemetry tracing end to end: one trace across gateway, PDP and backend, exported over OTLP/HTTP.

A loopback OTLP collector (aiohttp) receives what the services export; the protobuf is decoded
with the exporter's own `opentelemetry-proto`. The agent sends a W3C `traceparent`; the gateway
continues it, the PDP joins it (traceparent on the decision call), the backend receives it, and
the trace id is in the gateway's log lines. Without an endpoint nothing is installed.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from aiohttp import web

from shared.jsonutil import loads
from shared.tracing import available
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import audit_rows, gateway_stack, start_site
from tests.integration.test_access_log import Lines

pytestmark = pytest.mark.skipif(not available(), reason="the otel extra is not installed")

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


class Collector:
    """POST /v1/traces: decode ExportTraceServiceRequest bodies into (service, span) pairs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []
        self.arrived = asyncio.Event()

    async def traces(self, request: web.Request) -> web.Response:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = ExportTraceServiceRequest.FromString(await request.read())
        for rs in body.resource_spans:
            service = next(a.value.string_value for a in rs.resource.attributes if a.key == "service.name")
            for ss in rs.scope_spans:
                self.spans += [(service, s) for s in ss.spans]
        self.arrived.set()
        return web.Response(status=200)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/traces", self.traces)
        return app


async def test_one_trace_across_gateway_pdp_and_backend(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    collector = Collector()
    runner, url = await start_site(collector.app())
    lines = Lines()
    logging.getLogger("mcpgw.access").addHandler(lines)
    logging.getLogger("mcpgw.access").setLevel(logging.DEBUG)
    try:
        env = {"MCPGW_OTEL_ENDPOINT": url}
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env, pdp_env=env) as stack:
            before = len(mcp_backend.requests)
            status, body, _ = await stack.call(
                "POST", "/mcp/invoke?mcp_server=alpha", headers={"traceparent": PARENT},
                json={"tool_name": "echo", "parameters": {"text": "traced"}})
            assert status == 200, body
            sent = [r.headers.get("traceparent", "") for r in mcp_backend.requests[before:]]
            rows = [r for r in await audit_rows(stack, pg_dsn) if r["event_type"] != "policy_change"]
        # Leaving the stack shut the providers down, which exports what was buffered.
        await asyncio.wait_for(collector.arrived.wait(), 10)
    finally:
        logging.getLogger("mcpgw.access").removeHandler(lines)
        await runner.cleanup()

    spans = [(svc, s) for svc, s in collector.spans if s.trace_id.hex() == TRACE_ID]
    names = {(svc, s.name) for svc, s in spans}
    assert ("mcpgw-gateway", "POST /mcp/invoke") in names, names
    assert ("mcpgw-gateway", "auth.verify_token") in names
    assert any(svc == "mcpgw-gateway" and n.startswith("pdp /access/v1/") for svc, n in names), names
    assert ("mcpgw-gateway", "backend alpha") in names
    assert any(svc == "mcpgw-pdp" and n.startswith("POST /access/v1/") for svc, n in names), names
    by_id = {s.span_id: s for _, s in spans}
    server = next(s for svc, s in spans if s.name == "POST /mcp/invoke")
    assert server.parent_span_id.hex() == "00f067aa0ba902b7"  # continues the agent's trace
    pdp_server = next(s for svc, s in spans if svc == "mcpgw-pdp")
    assert by_id[pdp_server.parent_span_id].name.startswith("pdp /access/v1/")  # joined over the wire
    assert sent and all(TRACE_ID in t for t in sent), sent  # the backend got traceparent
    access = [line for line in lines.lines if line.get("route") == "/mcp/invoke"]
    assert access and access[0]["trace_id"] == TRACE_ID  # and the logs carry the trace id
    # ... and so does the call's audit row (any PDP row written in the request carries it too).
    assert any(r["service"] == "gateway" for r in rows), rows
    assert all(loads(r["extra"])["trace_id"] == TRACE_ID for r in rows), rows


async def test_no_endpoint_no_tracing(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as stack:
        names = [getattr(m, "__qualname__", "") for m in stack.app.middlewares]
        assert not any("tracing" in n for n in names), names
        before = len(mcp_backend.requests)
        status, _, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", headers={"traceparent": PARENT},
                                        json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 200
        assert all("traceparent" not in r.headers for r in mcp_backend.requests[before:])
