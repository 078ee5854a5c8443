"""Access log cost: CPU per request of the access-log middleware, on (JSON to /dev/null) vs off.

Runs the real middleware chain piece (request id + access log) around a trivial handler with
aiohttp's in-process request objects, N requests per cell, cells interleaved; prints the CPU time
per request for `off`, `INFO` through a handler on the access logger (the LogRecord path), `INFO`
through the gateway's own root stdout handler (the direct line), and the differences.

    .venv/bin/python bench/bench_access_log.py [--quick] [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from shared.access_log import access_writer
from shared.logging import JsonFormatter, request_id_middleware
from shared.outcome import outcome_middleware


async def ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def cell(level: str, n: int) -> float:
    """CPU seconds per request through the request-id and request-outcome middlewares (no metrics)."""
    app = web.Application()
    app.router.add_get("/mcp/servers", ok)
    rid = request_id_middleware()
    access = outcome_middleware(lambda *_: None, access_writer(level, lambda _r: "alice@example.com"))

    async def chain(request: web.Request) -> web.StreamResponse:
        return await rid(request, lambda r: access(r, ok))

    requests = []
    for _ in range(n):
        req = make_mocked_request("GET", "/mcp/servers", app=app)
        match = await app.router.resolve(req)
        req._match_info = match  # the route template the log names
        requests.append(req)
    start = time.process_time()
    for req in requests:
        await chain(req)
    return (time.process_time() - start) / n


def route_to(logger: logging.Logger, handler: logging.Handler, *, direct: bool) -> None:
    """Send access lines to `handler`: as the gateway's root stdout handler (the direct path), or
    attached to the access logger itself (any other set-up: the LogRecord path)."""
    root = logging.getLogger()
    for h in (*root.handlers, *logger.handlers):
        (root if h in root.handlers else logger).removeHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = direct
    (root if direct else logger).addHandler(handler)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (args.requests, args.rounds)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: ASYNC230, SIM115 - once, lives for the run
    handler._mcpgw = True  # type: ignore[attr-defined]  # as shared.logging.setup_logging marks it
    handler.setFormatter(JsonFormatter("gateway"))
    logger = logging.getLogger("mcpgw.access")
    cells: dict[str, list[float]] = {"off": [], "record": [], "direct": []}
    for i in range(rounds):
        for name in (list(cells) if i % 2 == 0 else list(reversed(cells))):
            route_to(logger, handler, direct=name == "direct")
            cells[name].append(await cell("off" if name == "off" else "INFO", n))
    off, record, direct = (statistics.median(v) for v in cells.values())
    print(f"requests per cell {n}, rounds {rounds}")
    print(f"access log off   : {off * 1e6:7.1f} us CPU per request (request id + outcome middleware, no metrics, trivial handler)")
    print(f"INFO, LogRecord  : {record * 1e6:7.1f} us CPU per request (one JSON line to /dev/null via logging)")
    print(f"INFO, direct line: {direct * 1e6:7.1f} us CPU per request (the same line, shared.logging.direct_line)")
    print(f"cost of the line: {(record - off) * 1e6:.1f} us via LogRecord, {(direct - off) * 1e6:.1f} us direct")


if __name__ == "__main__":
    asyncio.run(main())
