"""Tracing cost in-process: CPU per request of the tracing middleware plus one client span and a
`traceparent` injection (what a proxied call adds), with tracing off, sampling 0.1 and 1.0.

Spans go to the real BatchSpanProcessor with an exporter that discards them, so the figures are the
SDK's own cost (span creation, context, sampling, batching, protobuf-free). Cells interleaved.

    .venv/bin/python bench/bench_tracing.py [--quick] [--requests N] [--rounds R]   # default 3,000 x 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from shared import tracing
from shared.metrics import route_name


class Discard:
    """A SpanExporter that drops everything (no network in the measurement)."""

    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 0) -> bool:
        return True


async def cell(ratio: float | None, n: int) -> float:
    """CPU seconds per request; ratio None = tracing off (middleware not installed)."""
    app = web.Application()
    headers: dict[str, str] = {}

    async def handler(_request: web.Request) -> web.Response:
        with tracing.span("backend demo", True, {"mcp.server": "demo"}) if tracing.tracer_var.get() else tracing.OFF:
            tracing.inject(headers)
        return web.Response(text="ok")

    app.router.add_post("/mcp/invoke", handler)
    state = tracing.Tracing("gateway", "http://127.0.0.1:9", ratio, exporter=Discard()) if ratio is not None else None
    middleware = tracing.server_middleware(lambda _r: state, route_name)
    requests = []
    for _ in range(n):
        req = make_mocked_request("POST", "/mcp/invoke", app=app)
        req._match_info = await app.router.resolve(req)
        requests.append(req)
    start = time.process_time()
    for req in requests:
        if state is None:
            await handler(req)
        else:
            await middleware(req, handler)
    spent = (time.process_time() - start) / n
    if state is not None:
        state.shutdown()
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (args.requests, args.rounds)
    cells: dict[str, list[float]] = {"off": [], "0.1": [], "1.0": []}
    labels = list(cells)
    for r in range(rounds):
        for label in labels[r % 3:] + labels[:r % 3]:
            cells[label].append(await cell(None if label == "off" else float(label), n))
    print(f"requests per cell {n}, rounds {rounds}; CPU per request (server span + 1 client span + inject)")
    off = statistics.median(cells["off"])
    for label, values in cells.items():
        med = statistics.median(values)
        print(f"  tracing {label:>4}: {med * 1e6:7.1f} us   (+{(med - off) * 1e6:.1f} us over off)")


if __name__ == "__main__":
    asyncio.run(main())
