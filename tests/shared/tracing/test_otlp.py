"""OTLP JSON encoding, checked against the official protobuf schema (opentelemetry-proto).

OTLP/JSON is proto3 JSON except that trace and span ids are hex; `as_proto` turns them into the
base64 proto3 expects and parses strictly (unknown fields, wrong types and bad enums fail).
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared.common_settings import CommonSettings
from shared.jsonutil import loads
from shared.settings import SettingsError, load_settings
from shared.tracing import otlp
from shared.tracing.spans import Tracer
from shared.tracing.traceparent import Parent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
_IDS = ("traceId", "spanId", "parentSpanId")


def as_proto(body: bytes) -> Any:
    """An OTLP/JSON export body as an ExportTraceServiceRequest (raises if it is not well-formed)."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    doc = loads(body)
    for rs in doc["resourceSpans"]:
        for ss in rs["scopeSpans"]:
            for span in ss["spans"]:
                for key in _IDS:
                    if key in span:
                        assert len(span[key]) == (32 if key == "traceId" else 16), span
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.ParseDict(doc, ExportTraceServiceRequest())


def test_encoding_matches_the_otlp_schema() -> None:
    tracer = Tracer("gateway", 1.0)
    with tracer.server_span("POST /mcp/invoke", Parent(TRACE, SPAN, True), "congo=t61rcWkgMzE") as server:
        server.attributes = {"http.route": "/mcp/invoke", "http.response.status_code": 502, "retry": False,
                             "ratio": 0.5, "one": 1, "true": True, "list": ["a"]}
        server.error = "HTTP 502"
        with server.child("backend alpha", 3, {"mcp.server": "alpha"}):
            pass
    body = otlp.encode(otlp.resource("gateway", "1.2.3"), tracer.buffer)
    request = as_proto(body)
    (rs,) = request.resource_spans
    assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "mcpgw-gateway"
    (ss,) = rs.scope_spans
    assert ss.scope.name == "mcpgw"
    backend, srv = ss.spans
    assert srv.trace_id.hex() == TRACE and srv.parent_span_id.hex() == SPAN
    assert backend.parent_span_id == srv.span_id and backend.trace_id == srv.trace_id
    assert (srv.kind, backend.kind) == (2, 3)  # SPAN_KIND_SERVER, SPAN_KIND_CLIENT
    assert srv.start_time_unix_nano == server.start and srv.end_time_unix_nano == server.end
    assert srv.flags == 0x301 and backend.flags == 0x101  # sampled; parent remote / local
    assert srv.trace_state == "congo=t61rcWkgMzE"
    values = {a.key: a.value for a in srv.attributes}
    assert values["http.route"].string_value == "/mcp/invoke"
    assert values["http.response.status_code"].int_value == 502
    assert values["retry"].HasField("bool_value") and values["ratio"].double_value == 0.5
    assert values["one"].int_value == 1 and values["true"].bool_value is True  # 1 == True: cached apart
    assert values["list"].string_value == "['a']"
    assert (srv.status.code, srv.status.message) == (2, "HTTP 502")
    assert not backend.HasField("status")
    # The wire form itself: hex ids and string nanos, as the OTLP spec's JSON mapping asks.
    wire = loads(body)["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert wire["traceId"] == TRACE and isinstance(wire["startTimeUnixNano"], str)
    assert wire["attributes"][1] == {"key": "http.response.status_code", "value": {"intValue": "502"}}


def test_endpoint_is_a_base_url() -> None:
    assert otlp.traces_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318/v1/traces"
    assert otlp.traces_url("https://otel.example/prefix/") == "https://otel.example/prefix/v1/traces"
    ok = load_settings(CommonSettings, "MCPGW_", environ={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, dotenv=None)
    assert ok.otel_endpoint == "http://c:4318"
    for bad in ("127.0.0.1:4318", "ftp://c", "http://", "http://c:4318/v1/traces?x=1", "http://[::1", "http://c:99999"):
        with pytest.raises(SettingsError, match=r"otel_endpoint \(MCPGW_OTEL_ENDPOINT\): must be an http\(s\) URL"):
            load_settings(CommonSettings, "MCPGW_", environ={"MCPGW_OTEL_ENDPOINT": bad}, dotenv=None)
    with pytest.raises(SettingsError, match="must not carry credentials") as info:
        load_settings(CommonSettings, "MCPGW_", environ={"MCPGW_OTEL_ENDPOINT": "https://u:s3cret@c"}, dotenv=None)
    assert "s3cret" not in str(info.value)


def test_collector_headers() -> None:
    assert otlp.parse_headers("api-key=k%3D1%2C2, x-tenant = a b ,") == {"api-key": "k=1,2", "x-tenant": "a b"}
    assert otlp.parse_headers("") == {}
    for bad, why in (("novalue", "entry 1 is not key=value"), ("a=1,bad key=2", "entry 2 is not key=value"),
                     ("x=a%0d%0aInjected: 1", "the value of x holds a line break")):
        with pytest.raises(ValueError, match=why):
            otlp.parse_headers(bad)
    # A bad value is refused at start without ever being shown.
    with pytest.raises(SettingsError) as info:
        load_settings(CommonSettings, "MCPGW_", environ={"OTEL_EXPORTER_OTLP_HEADERS": "api-key=s3cret%0a"}, dotenv=None)
    assert "s3cret" not in str(info.value) and "otel_headers" in str(info.value)


def test_partial_success_is_read_leniently() -> None:
    assert otlp._rejected(b'{"partialSuccess": {"rejectedSpans": "3", "errorMessage": "x"}}') == 3
    assert otlp._rejected(b"{}") == 0 and otlp._rejected(b"") == 0
    assert otlp._rejected(b"\x0a\x00") == 0  # a protobuf body: accepted


def test_cached_attribute_sets_keep_their_types() -> None:
    # 1 == True == 1.0 and hash alike: a set rendered once must not be handed to an equal set of another type.
    tracer = Tracer("gateway", 1.0)
    with tracer.server_span("r", None) as server:
        for value in (1, True, 1.0, "1", 1, True):
            server.child("c", attributes=("n", value)).finish()
    got = [otlp.span_json(s)["attributes"][0]["value"] for s in tracer.buffer[:-1]]  # the server span last
    assert got == [{"intValue": "1"}, {"boolValue": True}, {"doubleValue": 1.0}, {"stringValue": "1"},
                   {"intValue": "1"}, {"boolValue": True}]


def test_a_pre_rendered_attribute_set_encodes_like_the_flat_tuple() -> None:
    # The server middleware hands over its (method, route, status) set rendered once.
    flat = ("http.request.method", "POST", "http.route", "/mcp/invoke", "http.response.status_code", 502)
    tracer = Tracer("gateway", 1.0)
    for attributes in (flat, otlp.rendered(flat)):
        with tracer.server_span("POST /mcp/invoke", None) as server:
            server.attributes = attributes
    first, second = (otlp.span_json(s) for s in tracer.buffer)
    assert first["attributes"] == second["attributes"] == [
        {"key": "http.request.method", "value": {"stringValue": "POST"}},
        {"key": "http.route", "value": {"stringValue": "/mcp/invoke"}},
        {"key": "http.response.status_code", "value": {"intValue": "502"}}]
    as_proto(otlp.encode(otlp.resource("gateway"), tracer.buffer))


async def test_a_full_batch_wakes_one_post_and_the_remainder_waits_for_the_tick(aiohttp_server: Any) -> None:
    posts: list[int] = []

    async def traces(request: web.Request) -> web.Response:
        posts.append(len(loads(await request.read())["resourceSpans"][0]["scopeSpans"][0]["spans"]))
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(app)
    tracer = Tracer("gateway", 1.0, batch_size=2)
    async with aiohttp.ClientSession() as session:
        exporter = otlp.Exporter(tracer, str(server.make_url("/")), session,
                                 otlp.TracingMetrics(CollectorRegistry(), tracer))
        for i in range(5):
            tracer.server_span(f"r{i}", None).finish()
        await exporter.export_buffered(full_only=True)  # woken by a full batch: full batches only
        assert posts == [2, 2] and len(tracer.buffer) == 1
        await exporter.export_buffered()  # the tick: everything
        assert posts == [2, 2, 1] and tracer.buffer == []


async def test_spans_lost_at_shutdown_are_counted(aiohttp_server: Any) -> None:
    """A collector that never answers: at stop's limit the batch in flight and the spans still
    buffered are counted as dropped{reason="shutdown"}, none silently."""
    received, release = asyncio.Event(), asyncio.Event()

    async def traces(request: web.Request) -> web.Response:
        received.set()
        await release.wait()
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    server = await aiohttp_server(app)
    tracer = Tracer("gateway", 1.0, batch_size=2)
    registry = CollectorRegistry()
    async with aiohttp.ClientSession() as session:
        exporter = otlp.Exporter(tracer, str(server.make_url("/")), session, otlp.TracingMetrics(registry, tracer))
        task = asyncio.create_task(exporter.run())
        for i in range(5):
            tracer.server_span(f"r{i}", None).finish()
        await received.wait()  # one batch of 2 in flight, 3 spans buffered
        await exporter.stop(task, limit=0.05)
        release.set()
    assert task.cancelled()
    assert registry.get_sample_value("mcpgw_tracing_dropped_spans_total", {"reason": "shutdown"}) == 5
