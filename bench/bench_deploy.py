"""Deployment benchmark: the Kubernetes pod specs run as local processes (tests/integration/deploy_pod.py).

For each topology (PDP sidecar = deploy/k8s/base, standalone PDP = overlays/standalone-pdp) on a fresh
database: seconds from process start to passing startup+readiness probes (PDP: migrations and policy
import included), the latency of an authenticated `GET /mcp/servers` (one PDP decision per call,
decision cache off) and with the gateway's decision cache on, and seconds from SIGTERM to exit.
Both PDP paths are loopback here: the figures compare the caller checks (loopback vs bearer token),
not the cluster network hop the standalone PDP adds.

    .venv/bin/python bench/bench_deploy.py            # 1,000 calls per cell
    .venv/bin/python bench/bench_deploy.py --quick    # 100 calls per cell
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import db  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402
from tests.integration.deploy_pod import TOPOLOGIES, run_pod  # noqa: E402


async def latency(session: aiohttp.ClientSession, url: str, token: str, n: int) -> list[float]:
    """Milliseconds per sequential call (after 20 warm-up calls)."""
    headers = {"Authorization": f"Bearer {token}"}
    samples = []
    for i in range(n + 20):
        start = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        if i >= 20:
            samples.append((time.perf_counter() - start) * 1e3)
    return samples


def p(samples: list[float], q: float) -> float:
    return sorted(samples)[max(0, int(len(samples) * q) - 1)]


async def run(n: int) -> None:
    server = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    p50s: dict[tuple[str, str], float] = {}
    async with running_issuer() as issuer, aiohttp.ClientSession() as session:
        token = issuer.mint("admin@example.com", username="admin@example.com", audience="mcpgw")
        for topology in sorted(TOPOLOGIES):
            print(f"== {topology}")
            for cache, ttl in (("cache off", "0"), ("cache on", "5")):
                # A new empty database per pod: first start = migrations + policy import.
                name = "bench_deploy_" + uuid.uuid4().hex[:8]
                secrets = {"database-url": await create_database(server, name), "mcp-session-secret": "s" * 32,
                           "pdp-api-token": "t" * 32}
                with tempfile.TemporaryDirectory() as tmp:
                    async with run_pod(topology, Path(tmp), secrets, issuer.issuer,
                                       {"MCPGW_GATEWAY_DECISION_CACHE_TTL": ttl}) as pod:
                        samples = await latency(session, pod.url("gateway") + "/mcp/servers", token, n)
                    if cache == "cache off":
                        print(f"  start to ready        pdp {pod.ready_seconds['pdp']:.2f} s   "
                              f"gateway {pod.ready_seconds['gateway']:.2f} s (fresh database)")
                        print(f"  SIGTERM to exit       gateway {pod.stop_seconds['gateway']:.2f} s   "
                              f"pdp {pod.stop_seconds['pdp']:.2f} s   exit codes {pod.exit_codes}")
                await drop_database(server, name)
                p50s[(topology, cache)] = statistics.median(samples)
                print(f"  GET /mcp/servers, {cache:<9}  p50 {statistics.median(samples):6.2f} ms   "
                      f"p99 {p(samples, 0.99):6.2f} ms   ({n} calls)")
    print("ratios (same run)")
    for cache in ("cache off", "cache on"):
        print(f"  standalone / sidecar, {cache}: {p50s[('standalone-pdp', cache)] / p50s[('base', cache)]:.2f}x")
    for topology in sorted(TOPOLOGIES):
        print(f"  {topology}: cache off / cache on: {p50s[(topology, 'cache off')] / p50s[(topology, 'cache on')]:.2f}x")


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 calls per cell instead of 1,000")
    args = parser.parse_args()
    asyncio.run(run(100 if args.quick else 1000))


if __name__ == "__main__":
    main()
