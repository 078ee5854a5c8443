"""Broadcast fan-out: one REST broadcast to N backends against one call to the slowest of them.

N official-SDK backends (stateless JSON, `echo` only) run as threads of one helper process, each
answering after its own delay (spread evenly from --fast to --slow ms), so the backends wait rather
than compute; the PDP and the gateway (JWT, policy with a warm decision cache, audit) run in their
own processes, the load generator in this one. Each round measures, back to back, sequential calls
of `echo` on the slowest backend through the gateway (`/mcp/invoke`), sequential broadcasts of
`echo` to all N (`/mcp/invoke-broadcast`: "broadcast" lets the gateway find the servers offering
the tool, "named" names all N in `mcp_servers`) and, for reference, the same fan-out made from this
process with the gateway's upstream client (no gateway); figures are medians over rounds. The goal (issue 10):
broadcast p50 ≤ 1.1 × the slowest backend's p50, i.e. the fan-out adds at most a tenth of the
slowest answer. It also prints the gateway's CPU per broadcast and per target.

    .venv/bin/python bench/bench_broadcast.py [--quick] [--backends N] [--rounds R] [--calls C]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_gateway as bg  # noqa: E402  (Processes, wait_http, free_port, pct, start_gateway, cpu_seconds)

from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import Registry  # noqa: E402
from gateway.upstream import UpstreamPool, create_session  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402

AUDIENCE, SUBJECT = "mcpgw", "caller@example.com"
POLICY = bg.allow_policy([SUBJECT])


def serve_backends(count: int, fast: float, slow: float) -> None:
    """Helper process: `count` SDK backends in threads; prints their URLs as one JSON line, then waits."""
    from tests.fixtures.backend_server import start_backend

    delays = [fast + (slow - fast) * i / max(1, count - 1) for i in range(count)]
    urls = [start_backend("stateless-json", f"b{i:02d}", ["echo"], delay=d / 1000).url for i, d in enumerate(delays)]
    print(json.dumps(urls), flush=True)
    while True:
        time.sleep(3600)


async def run(args: argparse.Namespace) -> None:
    await bg.run_with_stack("bench_bc", lambda dsn, tmp, procs: _run(args, dsn, tmp, procs))


async def _run(args: argparse.Namespace, bench_dsn: str, tmp: Path, procs: bg.Processes) -> None:
    helper = procs.spawn([str(Path(__file__)), "--serve-backends", str(args.backends), "--fast", str(args.fast),
                          "--slow", str(args.slow)], {}, ROOT, capture=True)
    assert helper.stdout is not None
    urls = json.loads(helper.stdout.readline())
    servers = tmp / "mcp_servers.yaml"
    servers.write_text("servers:\n" + "".join(f"  b{i:02d}:\n    url: {u}\n    type: http\n" for i, u in enumerate(urls)))
    slowest = f"b{len(urls) - 1:02d}"
    pdp_port = bg.spawn_pdp(procs, tmp, bench_dsn, POLICY)
    async with running_issuer() as issuer, aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120)
    ) as session:
        await bg.wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
        argv = ["--servers", str(servers), "--pdp-url", f"http://127.0.0.1:{pdp_port}",
                "--issuer", issuer.issuer, "--audience", AUDIENCE]
        env = {"DATABASE_URL": bench_dsn, "MCPGW_DATA_DIR": str(tmp / "gw"), "AUDIT_LOG_FILE": str(tmp / "audit.jsonl"),
               "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600", "MCPGW_LOG_LEVEL": "ERROR"}
        proc, url = await bg.start_gateway(procs, ROOT, env, argv, None, args.yappi)
        await bg.wait_http(session, url + "/health")
        token = issuer.mint(SUBJECT, username=SUBJECT, audience=AUDIENCE, expires_in=7200)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        one_body = json.dumps({"tool_name": "echo", "parameters": {"text": "hi"}})
        all_body = json.dumps({"tool_name": "echo", "parameters": {"text": "hi"}})
        named_body = json.dumps({"tool_name": "echo", "parameters": {"text": "hi"},
                                 "mcp_servers": [f"b{i:02d}" for i in range(len(urls))]})

        async def single() -> None:
            async with session.post(f"{url}/mcp/invoke?mcp_server={slowest}", data=one_body, headers=headers) as resp:
                text = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"single call: HTTP {resp.status}: {text[:300]!r}")

        async def broadcast(body: str = all_body) -> None:
            async with session.post(f"{url}/mcp/invoke-broadcast", data=body, headers=headers) as resp:
                text = await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"broadcast: HTTP {resp.status}: {text[:300]!r}")
                answered = json.loads(text)
                if answered["successful"] != len(urls):
                    raise RuntimeError(f"broadcast: {answered['successful']} of {len(urls)} succeeded: "
                                       f"{answered['errors']!r:.300}")

        # The same fan-out from this process with the gateway's upstream client, no gateway: what
        # the backends (one process, shared cores) allow at best.
        direct_session = create_session()
        registry = Registry(servers, credentials=CredentialStore(direct_session))
        registry.load()
        pool = UpstreamPool(direct_session, registry.credentials, registry)  # type: ignore[arg-type]
        names = [f"b{i:02d}" for i in range(len(urls))]

        async def direct() -> None:
            await asyncio.gather(*(pool.call_tool(n, "echo", {"text": "hi"}) for n in names))

        async def named() -> None:
            await broadcast(named_body)

        paths = [("slowest", single), ("broadcast", broadcast), ("named", named), ("direct fan-out", direct)]
        for _, fn in paths:  # connections, era detection, catalogs, token and decisions
            for _ in range(3):
                await fn()
        cells: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in paths}
        cpu: dict[str, list[float]] = {}
        for r in range(args.rounds):
            for label, fn in paths if r % 2 == 0 else paths[::-1]:
                before = bg.cpu_seconds(proc.pid), bg.cpu_seconds(helper.pid)
                p50, p99, _ = await bg.measure(fn, args.calls, 1)
                cpu.setdefault(label, []).append((bg.cpu_seconds(proc.pid) - before[0]) / args.calls * 1e3)
                cpu.setdefault(label + ":backends", []).append((bg.cpu_seconds(helper.pid) - before[1]) / args.calls * 1e3)
                cells[label].append((p50, p99))
            print(f"round {r + 1}: " + "  ".join(f"{k} p50 {v[-1][0]:.1f} ms p99 {v[-1][1]:.1f} ms"
                                                  for k, v in cells.items()), flush=True)
        await direct_session.close()
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in cells.items()}

        def ratio(a: str, b: str) -> float:
            return statistics.median(y[0] / x[0] for x, y in zip(cells[a], cells[b], strict=True))

        print(f"\n{len(urls)} backends answering after {args.fast:g}..{args.slow:g} ms; {args.rounds} rounds of "
              f"{args.calls} sequential calls each; CPU per call in ms (gateway / backends' process)")
        for label, _ in paths:
            print(f"{label:>15}: p50 {med[label][0]:7.1f} ms  p99 {med[label][1]:7.1f} ms   CPU "
                  f"{statistics.median(cpu[label]):6.1f} / {statistics.median(cpu[label + ':backends']):6.1f}")
        print(f"broadcast / slowest p50: {ratio('slowest', 'broadcast'):.3f} (median of per-round ratios; goal <= 1.1); "
              f"named / slowest: {ratio('slowest', 'named'):.3f}; direct fan-out / slowest: "
              f"{ratio('slowest', 'direct fan-out'):.3f}")
        per = statistics.median(cpu["broadcast"])
        print(f"gateway CPU per broadcast: {per:.1f} ms ({per / len(urls) * 1000:.0f} µs per target)")


def main() -> None:
    """Parse flags and run (or serve the backends, as the helper process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 calls")
    parser.add_argument("--backends", type=int, default=50)
    parser.add_argument("--fast", type=float, default=10.0, help="delay of the fastest backend, ms")
    parser.add_argument("--slow", type=float, default=100.0, help="delay of the slowest backend, ms")
    parser.add_argument("--rounds", type=int, help="rounds (default 5)")
    parser.add_argument("--calls", type=int, help="sequential calls per cell (default 30)")
    parser.add_argument("--yappi", metavar="FILE", help="run the gateway under yappi's CPU clock (pstats to FILE)")
    parser.add_argument("--serve-backends", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backends:
        serve_backends(args.serve_backends, args.fast, args.slow)
        return
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.calls = args.calls or (10 if args.quick else 30)
    bg.run_main(run, args)


if __name__ == "__main__":
    main()
