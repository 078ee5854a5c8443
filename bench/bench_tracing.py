"""Tracing cost in-process: CPU per request of what a proxied call adds, short of the export POST:
the tracing middleware's server span, the backend call's client span with a `traceparent`
injection, the audit emit's child span (as `shared/audit/emitter.py` opens it) and the OTLP/JSON
encoding of those 3 spans, with tracing off, sampling 0.1 and 1.0. Cells interleaved.

    .venv/bin/python bench/bench_tracing.py [--quick] [--requests N] [--rounds R]   # default 3,000 x 5
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared import tracing  # noqa: E402
from shared.outcome import outcome_middleware  # noqa: E402
from shared.tracing import otlp  # noqa: E402


async def cell(ratio: float | None, n: int) -> float:
    """CPU seconds per request; ratio None = tracing off (middleware not installed)."""
    app = web.Application()
    headers: dict[str, str] = {}

    async def handler(_request: web.Request) -> web.Response:
        traced = tracing.current_span.get() is not None
        with tracing.span("backend demo", True, ("mcp.server", "demo", "mcp.method", "tools/call")) if traced \
                else tracing.OFF:
            tracing.inject(headers)
        current = tracing.current_span.get()
        if current is not None:  # the audit emit's span (emitter.emit), event type as attribute
            emit = current.child("audit.emit", attributes=("audit.event_type", "tool_call"))
            emit.finish()
        return web.Response(text="ok")

    app.router.add_post("/mcp/invoke", handler)
    tracer = tracing.Tracer("gateway", ratio, capacity=n * 4) if ratio is not None else None
    # The request-outcome middleware, traced or not (metrics recorded nowhere): the difference is tracing's.
    middleware = outcome_middleware(lambda *_: None, None, tracer=tracer)
    res = otlp.resource("gateway")
    requests = []
    for _ in range(n):
        req = make_mocked_request("POST", "/mcp/invoke", app=app)
        req._match_info = await app.router.resolve(req)
        requests.append(req)
    start = time.process_time()
    for req in requests:
        await middleware(req, handler)
    if tracer is not None:  # the exporter's share, short of the POST
        while batch := tracer.take():
            otlp.encode(res, batch)
    return (time.process_time() - start) / n


async def counted(ratio: float | None, n: int) -> tuple[float, float]:
    """(Python calls, C calls) per request of one cell, counted with sys.setprofile: noise-free."""
    totals = {"call": 0, "c_call": 0}

    def profile(_frame: object, event: str, _arg: object) -> None:
        if event in totals:
            totals[event] += 1

    sys.setprofile(profile)
    try:
        await cell(ratio, n)
    finally:
        sys.setprofile(None)
    return totals["call"] / n, totals["c_call"] / n


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
    print(f"requests per cell {n}, rounds {rounds}; CPU per request (server span + client span + inject + audit span + encode of 3 spans)")
    off = statistics.median(cells["off"])
    for label, values in cells.items():
        med = statistics.median(values)
        print(f"  tracing {label:>4}: {med * 1e6:7.1f} us   (+{(med - off) * 1e6:.1f} us over off)")
    # The same cells counted; building the mocked requests counts alike in every cell, so the difference is tracing's.
    base = await counted(None, n)
    for label in labels[1:]:
        py, c = await counted(float(label), n)
        print(f"  tracing {label:>4}: +{py - base[0]:.1f} Python calls, +{c - base[1]:.1f} C calls per request over off")


if __name__ == "__main__":
    asyncio.run(main())
