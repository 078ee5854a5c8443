"""Broadcast fan-out: one REST broadcast to N backends against one call to the slowest of them.

N official-SDK backends (`echo` only) answer after their own delay (spread evenly from --fast to
--slow ms; the slowest is the last in target order), so they wait rather than compute. They speak
2026-07-28 (stateless JSON), or with `--era both` odd-numbered ones are 2025-11-25-only servers with
sessions (about twice the backend CPU per call). They are spread over --backend-procs helper
processes, each serving its share as uvicorn servers on ONE event loop in one thread (no periodic
tick; httptools when installed, extra `bench`): an answer that is due never queues behind a GIL
held by 49 backend threads, as in the old harness, where even a fan-out made without the gateway
came out at 1.28x. The PDP and the gateway (JWT, policy with a warm decision cache, audit) run in
their own processes, the load generator (uvloop, like the gateway) in this one.

Paths, interleaved call by call (each once per turn, the order rotating) so all see the same load
from the rest of the machine: `echo` on the slowest backend through the gateway (`/mcp/invoke`);
broadcasts of `echo` to all N (`/mcp/invoke-broadcast`: "broadcast" lets the gateway find the
servers offering the tool, "named" names all N in `mcp_servers`); and, as the harness's floor, the
same calls made from this process with the gateway's upstream client and no gateway: the slowest
alone, the fan-out in target order and the fan-out with the slowest sent first. Figures are medians
over rounds; ratios are medians of per-round ratios. The goal (issue 10): broadcast p50 <= 1.1 x
the slowest backend's p50; it is only judged when the floor's own ratio is near 1.0.

    .venv/bin/python bench/bench_broadcast.py [--quick] [--backends N] [--backend-procs P]
        [--era modern|legacy|both] [--rounds R] [--calls C] [--yappi FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
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


def era_kind(era: str, index: int) -> str:
    """The fixture kind of backend `index`: 2026-07-28 stateless JSON, or a 2025-11-25-only server."""
    modern = era == "modern" or (era == "both" and index % 2 == 0)
    return "stateless-json" if modern else "legacy"


def delays(count: int, fast: float, slow: float) -> list[float]:
    """Each backend's answer delay in ms, spread evenly from `fast` to `slow`."""
    return [fast + (slow - fast) * i / max(1, count - 1) for i in range(count)]


def serve_backends(indices: list[int], count: int, fast: float, slow: float, era: str) -> None:
    """Helper process: SDK backends `indices` (of `count`) as uvicorn servers on one event loop in
    one thread; prints their URLs as one JSON line, then serves until terminated."""
    import signal

    import uvicorn

    from tests.fixtures.backend_server import _bind, build_app

    wait = delays(count, fast, slow)

    async def serve() -> None:
        servers, urls = [], []
        for i in indices:
            sock = _bind()
            app = build_app(era_kind(era, i), f"b{i:02d}", ["echo"], wait[i] / 1000)
            config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="none", access_log=False,
                                    http=http_parser())
            config.load()
            server = uvicorn.Server(config)
            server.lifespan = config.lifespan_class(config)
            # `Server.serve` without its main loop: that loop wakes every server 10 times a second
            # (50 servers: ~8 ms of backend CPU per 100 ms broadcast, charged to the harness).
            await server.startup(sockets=[sock])
            await server.on_tick(0)  # the Date header, once
            if server.should_exit:
                raise RuntimeError(f"backend b{i:02d} did not start")
            servers.append(server)
            urls.append(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp")
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        print(json.dumps(urls), flush=True)
        await asyncio.Event().wait()

    try:  # the loop uvicorn itself would pick ("auto"): the backends' CPU per answer is the harness's cost
        import uvloop
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


def http_parser() -> str:
    """uvicorn's HTTP parser for the backends: httptools when installed (extra `bench`), else h11."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


def spawn_backends(procs: bg.Processes, args: argparse.Namespace) -> tuple[list[subprocess.Popen[str]], list[str]]:
    """`args.backends` SDK backends over `args.backend_procs` helper processes (backend i in process
    i mod P, so each process holds fast and slow ones); the processes and the URLs in backend order."""
    shares = [share for p in range(args.backend_procs) if (share := list(range(p, args.backends, args.backend_procs)))]
    helpers = [procs.spawn([str(Path(__file__)), "--serve-backends", ",".join(map(str, share)),
                            "--backends", str(args.backends), "--fast", str(args.fast), "--slow", str(args.slow),
                            "--era", args.era], {}, ROOT, capture=True) for share in shares]
    urls = [""] * args.backends
    for helper, share in zip(helpers, shares, strict=True):
        assert helper.stdout is not None
        for i, url in zip(share, json.loads(helper.stdout.readline()), strict=True):
            urls[i] = url
    return helpers, urls


async def run(args: argparse.Namespace) -> None:
    await bg.run_with_stack("bench_bc", lambda dsn, tmp, procs: _run(args, dsn, tmp, procs))


async def _run(args: argparse.Namespace, bench_dsn: str, tmp: Path, procs: bg.Processes) -> None:
    start_load = f"{os.getloadavg()[0]:.1f}"
    helpers, urls = spawn_backends(procs, args)
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

        # The same calls from this process with the gateway's upstream client, no gateway: the
        # harness's floor (backends and loopback on these cores). Near 1.0, or the harness is judged.
        direct_session = create_session()
        registry = Registry(servers, credentials=CredentialStore(direct_session))
        registry.load()
        pool = UpstreamPool(direct_session, registry.credentials, registry)  # type: ignore[arg-type]
        names = [f"b{i:02d}" for i in range(len(urls))]

        async def direct() -> None:
            await asyncio.gather(*(pool.call_tool(n, "echo", {"text": "hi"}) for n in names))

        async def direct_one() -> None:
            await pool.call_tool(slowest, "echo", {"text": "hi"})

        async def named() -> None:
            await broadcast(named_body)

        async def direct_reversed() -> None:
            await asyncio.gather(*(pool.call_tool(n, "echo", {"text": "hi"}) for n in reversed(names)))

        paths = [("slowest", single), ("broadcast", broadcast), ("named", named),
                 ("direct slowest", direct_one), ("direct fan-out", direct), ("direct, slowest first", direct_reversed)]
        for _, fn in paths:  # connections, era detection, catalogs, token and decisions
            for _ in range(3):
                await fn()
        # Calls interleaved (each path once per turn, the order rotating), so every path sees the
        # same load from the rest of the machine; per-round p50s, their per-round ratios.
        cells: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in paths}
        cpu: dict[str, list[float]] = {}
        for r in range(args.rounds):
            times: dict[str, list[float]] = {label: [] for label, _ in paths}
            used: dict[str, list[float]] = {label: [0.0, 0.0] for label, _ in paths}
            for i in range(args.calls):
                turn = paths[i % len(paths):] + paths[:i % len(paths)]
                for label, fn in turn:
                    # The direct paths run in this process: their "gateway" CPU is the upstream client's.
                    caller = os.getpid() if label.startswith("direct") else proc.pid
                    before = bg.cpu_seconds(caller), backends_cpu(helpers)
                    start = time.perf_counter()
                    await fn()
                    times[label].append(time.perf_counter() - start)
                    used[label][0] += bg.cpu_seconds(caller) - before[0]
                    used[label][1] += backends_cpu(helpers) - before[1]
            for label, _ in paths:
                cells[label].append((bg.pct(times[label], 0.5), bg.pct(times[label], 0.99)))
                cpu.setdefault(label, []).append(used[label][0] / args.calls * 1e3)
                cpu.setdefault(label + ":backends", []).append(used[label][1] / args.calls * 1e3)
            print(f"round {r + 1}: " + "  ".join(f"{k} p50 {v[-1][0]:.1f}" for k, v in cells.items()), flush=True)
        await direct_session.close()
        med = {k: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v)) for k, v in cells.items()}

        def ratio(a: str, b: str) -> float:
            return statistics.median(y[0] / x[0] for x, y in zip(cells[a], cells[b], strict=True))

        print(f"\nload average before/after: {start_load} / {os.getloadavg()[0]:.1f}")
        print(f"{len(urls)} backends answering after {args.fast:g}..{args.slow:g} ms; {args.rounds} rounds of "
              f"{args.calls} sequential calls each, {len(helpers)} backend processes, era {args.era}; "
              f"CPU per call in ms (gateway, or this process for the direct paths / backends' processes)")
        for label, _ in paths:
            print(f"{label:>22}: p50 {med[label][0]:7.1f} ms  p99 {med[label][1]:7.1f} ms   CPU "
                  f"{statistics.median(cpu[label]):6.1f} / {statistics.median(cpu[label + ':backends']):6.1f}")
        print(f"harness floor, no gateway: fan-out / slowest alone p50 {ratio('direct slowest', 'direct fan-out'):.3f}, "
              f"slowest sent first {ratio('direct slowest', 'direct, slowest first'):.3f} "
              f"(the gateway's ratio is only judged when these are near 1.0)")
        print(f"through the gateway, ÷ slowest alone p50 (median of per-round ratios; goal <= 1.1): broadcast "
              f"{ratio('slowest', 'broadcast'):.3f}, named {ratio('slowest', 'named'):.3f}")
        per = statistics.median(cpu["broadcast"])
        print(f"gateway CPU per broadcast: {per:.1f} ms ({per / len(urls) * 1000:.0f} µs per target)")


def backends_cpu(helpers: list[subprocess.Popen[str]]) -> float:
    """CPU seconds of every backend process so far."""
    return sum(bg.cpu_seconds(h.pid) for h in helpers)


def main() -> None:
    """Parse flags and run (or serve the backends, as the helper process)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 10 calls (under a minute)")
    parser.add_argument("--backends", type=int, default=50)
    parser.add_argument("--fast", type=float, default=10.0, help="delay of the fastest backend, ms")
    parser.add_argument("--slow", type=float, default=100.0, help="delay of the slowest backend, ms")
    parser.add_argument("--rounds", type=int, help="rounds (default 5)")
    parser.add_argument("--calls", type=int, help="sequential calls per cell (default 30)")
    parser.add_argument("--yappi", metavar="FILE", help="run the gateway under yappi's CPU clock (pstats to FILE)")
    parser.add_argument("--backend-procs", type=int, default=2,
                        help="helper processes the backends are spread over (default 2, one per core here: "
                             "10 cost twice the backend CPU per fan-out)")
    parser.add_argument("--era", choices=("modern", "legacy", "both"), default="modern",
                        help="backends' MCP era: 2026-07-28 (default), 2025-11-25 only, or alternating")
    parser.add_argument("--serve-backends", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backends:
        serve_backends([int(i) for i in args.serve_backends.split(",")], args.backends, args.fast, args.slow, args.era)
        return
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.calls = args.calls or (10 if args.quick else 30)
    import logging

    logging.basicConfig(level=logging.ERROR)
    try:  # the gateway's own loop (MCPGW_EVENT_LOOP=auto), so the fan-out without it is like for like
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
