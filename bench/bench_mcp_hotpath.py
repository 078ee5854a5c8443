"""Per-request CPU of /mcp's parsing, transport checks and disconnect watch, measured in-process.

Run: .venv/bin/python bench/bench_mcp_hotpath.py [--quick]
Prints µs per call for each step on a typical 2026-07-28 tools/call POST (no network, no backend),
and the issue 9 checks (method classification, routing headers, URI normal form, list admission).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiohttp import web  # noqa: E402
from aiohttp.test_utils import make_mocked_request  # noqa: E402
from multidict import CIMultiDict  # noqa: E402

from bench.timing import best_of, best_of_async  # noqa: E402
from gateway.keys import PRINCIPAL  # noqa: E402
from gateway.mcp import admission, endpoint, methods, protocol, streams, uris  # noqa: E402
from shared.jsonutil import dumps  # noqa: E402

BODY = {
    "jsonrpc": "2.0", "id": 7, "method": "tools/call",
    "params": {"name": "bench__echo", "arguments": {"text": "hello"},
               "_meta": {protocol.META_VERSION: "2026-07-28", protocol.META_CAPABILITIES: {}}},
}
HEADERS = CIMultiDict({
    "Host": "127.0.0.1:8080", "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream", protocol.H_VERSION: "2026-07-28",
    protocol.H_METHOD: "tools/call", protocol.H_NAME: "bench__echo", "Authorization": "Bearer x",
})
STATE: Any = SimpleNamespace(settings=SimpleNamespace(mcp_allowed_origins=(), mcp_required_scopes=(), public_url=None))
RAW = dumps(BODY)
READ = {"uri": "file:///srv/public/reports/2026/q4/summary-final-v2.txt"}


def _request() -> web.Request:
    req = make_mocked_request("POST", "/mcp", headers=HEADERS)
    req[PRINCIPAL] = SimpleNamespace(scopes=("mcp",), subject="alice")
    req._read_bytes = RAW  # what request.read() caches after the first read
    return req


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    n = 2_000 if parser.parse_args().quick else 20_000
    req = _request()
    msg = await endpoint.read_message(req, 1 << 20)

    async def done() -> web.StreamResponse:
        return web.StreamResponse()

    async def watched() -> web.StreamResponse:
        return await streams.until_disconnect(req, done())

    async def read() -> protocol.Message:
        return await endpoint.read_message(req, 1 << 20)

    rows = {
        "check_transport": best_of(lambda: endpoint.check_transport(req, STATE, post=True), n),
        "read_message (cached body: Content-Type, loads, parse)": await best_of_async(read, n),
        "parse_message": best_of(lambda: protocol.parse_message(BODY), n),
        "detect_era": best_of(lambda: protocol.detect_era(msg, req.headers), n),
        "validate_modern": best_of(lambda: protocol.validate_modern(msg, req.headers), n),
        "check_routing_headers (both eras)": best_of(lambda: protocol.check_routing_headers(msg, req.headers), n),
        "methods.plan tools/call (name check)": best_of(lambda: methods.plan("s", "request", msg.method, msg.params), n),
        "methods.plan resources/read (URI normal-form check)": best_of(
            lambda: methods.plan("s", "request", "resources/read", READ), n),
        "routing_headers rebuilt for the backend": best_of(lambda: protocol.routing_headers(msg), n),
        "until_disconnect around a finished coroutine": await best_of_async(watched, n),
        "(bare coroutine, for reference)": await best_of_async(done, n),
    }
    total = 0.0
    for name, us in rows.items():
        print(f"{name:58s} {us:6.2f} µs")
        if not name.startswith("("):
            total += us
    print(f"{'sum of the steps (parse_message is inside read_message)':58s} {total - rows['parse_message']:6.2f} µs")
    tools = {"tools": [{"name": f"tool_{i}", "inputSchema": {}} for i in range(100)]}
    guard = admission.CatalogGuard()
    print(f"{'admission of a 100-tool list (per list)':58s} {best_of(lambda: guard.result('s', 'tools/list', tools), n // 20):6.2f} µs")
    print(f"{'uris.check on a 60-character URI':58s} {best_of(lambda: uris.check(READ['uri']), n):6.2f} µs")


if __name__ == "__main__":
    asyncio.run(main())
