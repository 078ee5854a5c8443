"""Access log cost: CPU per request of the access-log middleware, on (JSON to /dev/null) vs off.

Runs the real middleware chain piece (request id + access log) around a trivial handler with
aiohttp's in-process request objects, N requests per cell, cells interleaved; prints the CPU time
per request for `off`, `INFO` with the line emitted, and the difference.

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

from shared.access_log import access_log_middleware
from shared.logging import JsonFormatter, request_id_middleware


async def ok(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def cell(level: str, n: int) -> float:
    """CPU seconds per request through request-id + access-log middlewares."""
    app = web.Application()
    app.router.add_get("/mcp/servers", ok)
    rid = request_id_middleware()
    access = access_log_middleware(level, lambda _r: "alice@example.com")

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


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    n, rounds = (2_000, 3) if args.quick else (args.requests, args.rounds)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: ASYNC230, SIM115 - once, lives for the run
    handler.setFormatter(JsonFormatter("gateway"))
    logger = logging.getLogger("mcpgw.access")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    off, on = [], []
    for i in range(rounds):
        for level in (("off", "INFO") if i % 2 == 0 else ("INFO", "off")):
            (off if level == "off" else on).append(await cell(level, n))
    a, b = statistics.median(off), statistics.median(on)
    print(f"requests per cell {n}, rounds {rounds}")
    print(f"access log off : {a * 1e6:7.1f} us CPU per request (request id middleware + trivial handler)")
    print(f"access log INFO: {b * 1e6:7.1f} us CPU per request (one JSON line to /dev/null)")
    print(f"cost of the line: {(b - a) * 1e6:.1f} us CPU per request")


if __name__ == "__main__":
    asyncio.run(main())
