"""Gateway overhead: tools/call through the gateway vs straight to the same SDK backend, one run.

Everything real and on loopback: an official-SDK MCP backend (own thread), an OIDC issuer, the PDP
app, embedded Postgres for audit rows, and the gateway with auth, policy (warm decision cache) and
audit on. "Direct" uses the gateway's own upstream client against the backend, so the difference
is what the gateway adds: the REST hop, token check, policy check, audit emit and forwarding.

    .venv/bin/python bench/bench_gateway.py [--quick] [--calls N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import Registry  # noqa: E402
from gateway.upstream import UpstreamPool, create_session  # noqa: E402
from shared import db  # noqa: E402
from shared.keys import AUDIT  # noqa: E402
from tests.integration.gateway_harness import gateway_stack  # noqa: E402

POLICY = """
roles:
  caller:
    permissions:
      - resource: "mcp:bench:*"
        actions: ["*"]
user_roles:
  bench@example.com: [caller]
default_policy: deny
"""


async def measure(call: Callable[[], Awaitable[None]], total: int, concurrency: int) -> tuple[list[float], float]:
    """Per-call latencies (s) and wall time for `total` calls at `concurrency`."""
    latencies: list[float] = []
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


class Backend:
    """The SDK backend in its own process, so it does not share the gateway's GIL."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.fixtures.backend_server", "--kind", "stateless-json", "--name", "bench"],
            cwd=ROOT, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


async def run(calls: int) -> None:
    backend = Backend()
    await asyncio.sleep(0.5)  # the URL is printed just before uvicorn starts accepting
    dsn = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    conn = await asyncpg.connect(dsn)
    name = f"bench_gw_{int(time.time())}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    bench_dsn = db.with_database(dsn, name)
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    try:
        async with gateway_stack(
            tmp, bench_dsn, {"bench": {"url": backend.url}}, policy=POLICY,
            env={"MCPGW_GATEWAY_DECISION_CACHE_TTL": "600"},
        ) as stack:
            headers = {**stack.headers("bench@example.com"), "Content-Type": "application/json"}
            body = b'{"tool_name": "echo", "parameters": {"text": "hello"}}'
            url = stack.url + "/mcp/invoke?mcp_server=bench"
            session = stack.session

            async def via_gateway() -> None:
                async with session.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

            direct_session = create_session()
            servers_file = tmp / "direct.yaml"
            servers_file.write_text(f"servers:\n  bench:\n    url: {backend.url}\n    type: http\n")
            registry = Registry(servers_file, credentials=CredentialStore(direct_session))
            registry.load()
            pool = UpstreamPool(direct_session, registry.credentials, registry)

            async def direct() -> None:
                await pool.call_tool("bench", "echo", {"text": "hello"})

            for fn in (via_gateway, direct):  # warm connections, era detection, caches
                await measure(fn, 200, 10)
            print(f"tools/call, {calls} calls per cell; latency in ms")
            print(f"{'concurrency':>11} {'path':>8} {'p50':>8} {'p99':>8} {'calls/s':>9}")
            for concurrency in (1, 50):
                rows = {}
                for label, fn in (("direct", direct), ("gateway", via_gateway)):
                    lat, wall = await measure(fn, calls, concurrency)
                    rows[label] = (pct(lat, 0.5), pct(lat, 0.99), calls / wall, statistics.mean(lat))
                    p50, p99, rate, _ = rows[label]
                    print(f"{concurrency:>11} {label:>8} {p50:>8.3f} {p99:>8.3f} {rate:>9.0f}")
                d, g = rows["direct"], rows["gateway"]
                print(f"{concurrency:>11} {'added':>8} {g[0] - d[0]:>8.3f} {g[1] - d[1]:>8.3f} "
                      f"{'ratio ' + format(g[2] / d[2], '.2f'):>9}")
            await stack.app[AUDIT].flush()
            await direct_session.close()
            conn = await asyncpg.connect(bench_dsn)
            rows_written = await conn.fetchval("SELECT count(*) FROM audit_events")
            await conn.close()
            print(f"audit rows written: {rows_written}")
    finally:
        backend.stop()
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="500 calls per cell instead of 5,000")
    parser.add_argument("--calls", type=int, help="calls per cell")
    args = parser.parse_args()
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args.calls or (500 if args.quick else 5000)))


if __name__ == "__main__":
    main()
