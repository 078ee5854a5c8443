"""stdio backend benchmark: the same official-SDK server over stdio (launched and bridged by the
gateway) vs over Streamable HTTP, both called through `UpstreamPool`.

Prints p50/p95 per tools/call at concurrency 1, calls/s at concurrency 16, and the ratios, all from
one run (the server is `tests/fixtures/stdio_server.py`; stdio goes through the gateway's internal
loopback endpoint and the JSON-RPC multiplexer, HTTP goes straight to the SDK's uvicorn server).

Run: `.venv/bin/python bench/bench_stdio.py` (`--quick` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_upstream import pct, sequential, throughput  # noqa: E402
from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import Registry, parse_servers  # noqa: E402
from gateway.upstream import UpstreamPool, create_session  # noqa: E402
from gateway.upstream.transports.bridge import BridgeHost, bridge_site  # noqa: E402
from gateway.upstream.transports.stdio_process import StdioLimits  # noqa: E402
from tests.fixtures.stdio_server import listening  # noqa: E402

FIXTURE = [sys.executable, "-m", "tests.fixtures.stdio_server"]


async def measure(pool: UpstreamPool, server: object, n: int) -> tuple[float, float, float]:
    """(p50 ms, p95 ms, calls/s at concurrency 16) of tools/call echo."""

    async def call() -> None:
        await pool.call_tool(server, "echo", {"text": "hello"})  # type: ignore[arg-type]

    lat = await sequential(call, n)
    return pct(lat, 0.5), pct(lat, 0.95), await throughput(call, n, 16)


async def main() -> None:
    """Run both measurements and print a table with ratios."""
    logging.disable(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    n = 200 if parser.parse_args().quick else 2000
    proc = await asyncio.create_subprocess_exec(*FIXTURE, "--http", cwd=ROOT, stdout=subprocess.PIPE,
                                                stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    # uvicorn's access log goes to stdout: keep reading it, or a full pipe stalls the server.
    drain = asyncio.create_task(proc.stdout.read())
    await listening(url)
    host = BridgeHost(StdioLimits())
    sites = bridge_site(host)
    await sites.__anext__()
    try:
        registry = Registry(None, bridge_url=host.url_for)
        registry.listeners.append(host.sync)
        raw = {"http": {"url": url},
               "stdio": {"type": "stdio", "command": FIXTURE[0], "args": FIXTURE[1:], "cwd": str(ROOT)}}
        servers, errors = parse_servers({"servers": raw})
        assert not errors, errors
        registry.set_servers(servers)
        async with create_session() as session:
            pool = UpstreamPool(session, CredentialStore(session, environ={}), registry)
            results = {}
            for _ in range(2):  # interleaved: the second round of each is kept
                for name in ("http", "stdio"):
                    results[name] = await measure(pool, registry.servers[name], n)
    finally:
        await sites.aclose()
        proc.terminate()
        await proc.wait()
        await drain
    print(f"tools/call echo, {n} calls per figure, same official-SDK server (tests/fixtures/stdio_server.py)")
    print(f"{'transport':<34}{'p50 ms':>8}{'p95 ms':>8}{'calls/s @16':>13}")
    for name, label in (("http", "Streamable HTTP (SDK uvicorn)"), ("stdio", "stdio via the gateway's bridge")):
        p50, p95, rate = results[name]
        print(f"{label:<34}{p50:>8.2f}{p95:>8.2f}{rate:>13,.0f}")
    h, s = results["http"], results["stdio"]
    print(f"stdio/http: p50 {s[0] / h[0]:.2f}x, p95 {s[1] / h[1]:.2f}x, throughput {s[2] / h[2]:.2f}x; "
          f"added p50 {s[0] - h[0]:+.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
