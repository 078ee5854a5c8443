"""jsonutil (orjson, error bodies), JSON logging with request ids, HTTP metrics by route template."""

from __future__ import annotations

import io
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared import jsonutil
from shared.access_log import access_writer
from shared.keys import REGISTRY
from shared.logging import JsonFormatter, direct_handler, direct_line, request_id_var, setup_logging
from shared.metrics import HttpMetrics, http_recorder, metrics_handler
from shared.outcome import outcome_middleware


@dataclass
class Point:
    x: int


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": 1}, {"a": 1}),
        ({1: "int key"}, {"1": "int key"}),
        (datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), "2026-01-02T03:04:05+00:00"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        ({"s": {3}}, {"s": [3]}),
        ((1, 2), [1, 2]),
        (Point(1), {"x": 1}),
    ],
)
def test_dumps(value, expected):
    assert json.loads(jsonutil.dumps(value)) == expected
    assert jsonutil.loads(jsonutil.dumps_str(value)) == expected


def test_dumps_rejects_unknown_types():
    with pytest.raises(TypeError):
        jsonutil.dumps(object())


async def test_read_json_and_error_body(aiohttp_client):
    async def echo(request: web.Request) -> web.Response:
        return jsonutil.json_response(await jsonutil.read_json(request))

    async def fail(_request: web.Request) -> web.Response:
        return jsonutil.error_response(418, "teapot", "short and stout", hint="tip")

    app = web.Application()
    app.router.add_post("/echo", echo)
    app.router.add_get("/fail", fail)
    client = await aiohttp_client(app)
    resp = await client.post("/echo", data=b'{"a": [1]}')
    assert resp.status == 200 and await resp.json() == {"a": [1]}
    resp = await client.post("/echo", data=b"")
    assert resp.status == 400 and "empty" in (await resp.json())["error"]["message"]
    resp = await client.post("/echo", data=b"{nope")
    body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "bad_request" and "malformed JSON" in body["error"]["message"]
    resp = await client.get("/fail")
    assert resp.status == 418
    assert await resp.json() == {"error": {"code": "teapot", "message": "short and stout", "hint": "tip"}}


def _record(msg: str = "hello", **extra) -> logging.LogRecord:
    record = logging.getLogger("t.mod").makeRecord("t.mod", logging.INFO, __file__, 1, msg, (), None, extra=extra)
    return record


def test_json_log_line_carries_request_id_and_extras():
    fmt = JsonFormatter("gateway")
    token = request_id_var.set("req-42")
    try:
        line = json.loads(fmt.format(_record("served %s", path="/mcp", status=200)))
    finally:
        request_id_var.reset(token)
    assert line["request_id"] == "req-42" and line["service"] == "gateway" and line["level"] == "INFO"
    assert line["logger"] == "t.mod" and line["path"] == "/mcp" and line["status"] == 200
    assert line["ts"].endswith("Z")
    assert "request_id" not in json.loads(fmt.format(_record()))


def test_json_log_line_survives_odd_extras_and_exceptions():
    fmt = JsonFormatter("pdp")
    line = json.loads(fmt.format(_record(obj=object(), n=1)))
    assert line["obj"].startswith("<object object") and line["n"] == 1
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.getLogger("t").makeRecord("t", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    assert "RuntimeError: boom" in json.loads(fmt.format(record))["exc"]


def test_setup_logging_is_idempotent(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    try:
        setup_logging("gateway", "DEBUG")
        setup_logging("gateway", "INFO")
        ours = [h for h in root.handlers if getattr(h, "_mcpgw", False)]
        assert len(ours) == 1
        token = request_id_var.set("r-1")
        logging.getLogger("x").info("hi")
        request_id_var.reset(token)
        assert json.loads(out.getvalue().splitlines()[-1])["request_id"] == "r-1"
    finally:
        for h in list(root.handlers):
            if h not in before:
                root.removeHandler(h)
        root.setLevel(level)


def test_direct_line_is_the_formatters_line_and_yields_to_any_other_listener(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    root, access = logging.getLogger(), logging.getLogger("mcpgw.access")
    before, level = list(root.handlers), root.level
    for h in before:
        root.removeHandler(h)
    try:
        setup_logging("gateway", "INFO")
        fields = {"method": "POST", "route": "/mcp", "status": 200, "duration_ms": 1.5, "subject": None}
        token = request_id_var.set("r-7")
        try:
            sink = direct_handler(access, logging.INFO)
            assert sink is not None
            direct_line(sink, logging.INFO, "mcpgw.access", "POST /mcp 200", fields)
            access.log(logging.INFO, "%s %s %s", "POST", "/mcp", 200, extra=fields)
        finally:
            request_id_var.reset(token)
        fast, slow = (json.loads(line) for line in out.getvalue().splitlines())
        assert list(fast) == list(slow) and fast.pop("ts")[:19] == slow.pop("ts")[:19]
        assert fast == slow and fast["request_id"] == "r-7" and fast["msg"] == "POST /mcp 200"
        root.handlers[0].setLevel(logging.WARNING)
        assert direct_handler(access, logging.INFO) is None  # the handler would drop it
        root.handlers[0].setLevel(logging.NOTSET)
        # Anything else that could see or change the record: the LogRecord path, as before.
        default = logging.getLogRecordFactory()
        logging.setLogRecordFactory(lambda *args, **kw: default(*args, **kw))  # e.g. one that redacts
        try:
            assert direct_handler(access, logging.INFO) is None
        finally:
            logging.setLogRecordFactory(default)
        assert direct_handler(access, logging.INFO) is not None
        extra = logging.NullHandler()
        access.addHandler(extra)
        assert direct_handler(access, logging.INFO) is None
        access.removeHandler(extra)
        access.addFilter(refuse := logging.Filter("other"))
        assert direct_handler(access, logging.INFO) is None
        access.removeFilter(refuse)
        root.handlers[0].setFormatter(logging.Formatter("%(message)s"))
        assert direct_handler(access, logging.INFO) is None
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in before:
            root.addHandler(h)
        root.setLevel(level)


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.mark.parametrize("observe", [False, True])
async def test_metrics_middleware_counts_by_route_template(aiohttp_client, observe):
    """The request-outcome middleware's metrics, with its access line off and on."""
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry, "t")
    lines = Captured()
    access = logging.getLogger("mcpgw.access")
    access.addHandler(lines)
    access.setLevel(logging.DEBUG)

    async def item(request: web.Request) -> web.Response:
        if request.match_info["id"] == "gone":
            raise web.HTTPGone()
        return web.Response(text="ok")

    async def crash(_request: web.Request) -> web.Response:
        raise RuntimeError("bug")

    chosen = outcome_middleware(http_recorder(metrics), access_writer("INFO" if observe else "off", lambda _r: "sam"))
    app = web.Application(middlewares=[chosen])
    app[REGISTRY] = registry
    app.router.add_get("/items/{id}", item)
    app.router.add_get("/crash", crash)
    app.router.add_get("/metrics", metrics_handler)
    client = await aiohttp_client(app)
    try:
        for path in ("/items/1", "/items/2", "/items/gone", "/nowhere", "/crash"):
            await client.get(path)
    finally:
        access.removeHandler(lines)
    if observe:
        assert [(r.route, r.status, r.subject) for r in lines.records] == [  # type: ignore[attr-defined]
            ("/items/{id}", 200, "sam"), ("/items/{id}", 200, "sam"), ("/items/{id}", 410, "sam"),
            ("unmatched", 404, "sam"), ("/crash", 500, "sam"),
        ]
    else:
        assert lines.records == []

    def count(route: str, status: str) -> float | None:
        return registry.get_sample_value(
            "t_http_requests_total", {"method": "GET", "route": route, "status": status}
        )

    assert count("/items/{id}", "200") == 2
    assert count("/items/{id}", "410") == 1
    assert count("unmatched", "404") == 1
    assert count("/crash", "500") == 1
    assert registry.get_sample_value(
        "t_http_request_duration_seconds_count", {"method": "GET", "route": "/items/{id}"}
    ) == 3
    text = await (await client.get("/metrics")).text()
    assert 't_http_requests_total{method="GET",route="/items/{id}",status="200"} 2.0' in text
    assert "/items/1" not in text
