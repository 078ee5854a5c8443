"""The request-outcome middleware: one body per set of parts, effects in the order separate
middlewares had them (span current for the handler and the record, then metrics and access line,
then the span ends), and the status each outcome ends with."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from shared.outcome import Recorder, outcome_middleware
from shared.tracing import Tracer, current_trace_id
from shared.tracing.otlp import span_json

KEY: web.RequestKey[list[str]] = web.RequestKey("kept")
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


def app_with(events: list[Any], tracer: Tracer | None) -> web.Application:
    def record(method: str, route: str, status: int, _seconds: float) -> None:
        events.append(("metrics", method, route, status, current_trace_id()))

    def write(_request: web.Request, route: str, status: int, _start: float) -> None:
        events.append(("access", route, status, current_trace_id()))

    def finish(request: web.Request, kept: list[str], status: int, _start: float) -> None:
        events.append(("record", kept, status, current_trace_id(), request[KEY] is kept))

    async def ok(request: web.Request) -> web.Response:
        request[KEY].append(current_trace_id() or "none")
        return web.Response(text="ok")

    async def gone(_request: web.Request) -> web.Response:
        raise web.HTTPGone()

    async def crash(_request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    app = web.Application(middlewares=[outcome_middleware(record, write, Recorder(KEY, list, finish), tracer)])
    app.router.add_get("/ok/{id}", ok)
    app.router.add_get("/gone", gone)
    app.router.add_get("/crash", crash)
    return app


async def test_untraced_body_has_no_tracing(aiohttp_client) -> None:
    events: list[Any] = []
    app = app_with(events, None)
    assert [m.__qualname__.split(".")[-1] for m in app.middlewares] == ["outcome_middleware"]
    client = await aiohttp_client(app)
    for path in ("/ok/1", "/gone", "/crash", "/nowhere"):
        await client.get(path)
    assert events == [
        ("record", ["none"], 200, None, True), ("metrics", "GET", "/ok/{id}", 200, None), ("access", "/ok/{id}", 200, None),
        ("record", [], 410, None, True), ("metrics", "GET", "/gone", 410, None), ("access", "/gone", 410, None),
        ("record", [], 500, None, True), ("metrics", "GET", "/crash", 500, None), ("access", "/crash", 500, None),
        ("record", [], 404, None, True), ("metrics", "GET", "unmatched", 404, None), ("access", "unmatched", 404, None),
    ]


@pytest.mark.parametrize("path,status,route", [("/ok/7", 200, "/ok/{id}"), ("/gone", 410, "/gone"),
                                               ("/crash", 500, "/crash"), ("/nowhere", 404, "unmatched")])
async def test_traced_body_keeps_the_span_current_until_the_access_line(aiohttp_client, path, status, route) -> None:
    events: list[Any] = []
    tracer = Tracer("t", 1.0)
    app = app_with(events, tracer)
    assert "tracing" in app.middlewares[0].__qualname__
    client = await aiohttp_client(app)
    for _ in range(2):  # the second request's name and attributes come from the memo
        resp = await client.get(path, headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
        assert resp.status == status
    kept = [TRACE_ID] if status == 200 else []
    assert events == 2 * [("record", kept, status, TRACE_ID, True), ("metrics", "GET", route, status, TRACE_ID),
                          ("access", route, status, TRACE_ID)]
    assert current_trace_id() is None  # reset once the request ended
    spans = tracer.take()
    assert len(spans) == 2 and span_json(spans[0])["name"] == span_json(spans[1])["name"] == f"GET {route}"
    assert all(s[0] == TRACE_ID and s[2] == "00f067aa0ba902b7" for s in spans)
