"""Python function calls per gateway request: a deterministic complement to CPU time per call.

CPU µs per call moves by 10-30 % with other work on a shared machine; the number of function calls
(Python and C, as cProfile counts them) per request does not. Each gateway runs under
bench/count_gateway.py; after a warm-up the profile is switched on for exactly N sequential
`POST /mcp/invoke` calls (c=1), so start-up and warm-up are not counted. Prints calls per request
for each gateway (and the bare floor with `--bare`), then where they go: per source area and the
top functions by calls.

    .venv/bin/python bench/bench_calls.py [--quick] [--calls N] [--bare] [--baseline DIR] [--top K]
        [--save PREFIX]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import pstats
import signal
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

sys.path.insert(0, str(ROOT / "bench"))

import bench_gateway as bg  # noqa: E402  (the stack: backend, PDP, issuer, gateway processes)

from tests.fixtures.oidc import running_issuer  # noqa: E402

# Where a function's calls are counted, by path fragment (first match wins; order matters).
AREAS = (
    ("access log", "shared/access_log.py"), ("logging", "/logging/"), ("logging", "shared/logging.py"),
    ("audit", "shared/audit/"), ("audit", "shared/redact.py"), ("audit", "gateway/gwaudit.py"),
    ("audit", "middlewares/audit.py"), ("middlewares", "gateway/middlewares/"), ("metrics", "shared/metrics.py"),
    ("metrics", "prometheus_client"), ("auth", "shared/auth/"), ("pep", "gateway/pep"),
    ("calls", "gateway/calls/"), ("routes", "gateway/routes/"), ("upstream", "gateway/upstream/"),
    ("gateway other", "gateway/"), ("shared other", "shared/"), ("jsonschema", "jsonschema"),
    ("aiohttp", "aiohttp/"), ("multidict/yarl", "multidict"), ("multidict/yarl", "yarl"),
    ("asyncio", "asyncio/"),
)


def area(filename: str) -> str:
    """The area a function's source file belongs to."""
    for name, fragment in AREAS:
        if fragment in filename:
            return name
    return "builtins" if filename == "~" else "other"


async def profiled(url: str, pid: int, out: Path, session: aiohttp.ClientSession, headers: dict[str, str],
                   calls: int) -> None:
    """Profile exactly `calls` sequential invocations through the gateway at `url`."""
    invoke = url + "/mcp/invoke?mcp_server=bench"

    async def call() -> None:
        async with session.post(invoke, data=bg.BODY, headers=headers) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{url} answered {resp.status}: {body[:300]!r}")

    await bg.measure(call, 300, 1)  # warm: connections, token and decision caches, schemas
    os.kill(pid, signal.SIGUSR1)
    await asyncio.sleep(0.3)
    await bg.measure(call, calls, 1)
    await asyncio.sleep(0.3)  # let the audit writer's linger end inside the window, as in steady state
    os.kill(pid, signal.SIGUSR2)
    done = str(out) + ".done"
    for _ in range(300):
        if await asyncio.to_thread(os.path.exists, done):
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"no profile from pid {pid}")


def summary(label: str, path: Path, calls: int, top: int) -> int:
    """Print calls per request for one profile; return the total."""
    stats = pstats.Stats(str(path))
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(value[1] for value in raw.values())
    by_area: dict[str, int] = defaultdict(int)
    for (filename, _, _), (_, nc, _, _, _) in raw.items():
        by_area[area(filename)] += nc
    print(f"\n== {label}: {total / calls:.0f} function calls per request ({total} over {calls} requests)")
    print("   by area: " + ", ".join(f"{name} {n / calls:.1f}" for name, n in sorted(by_area.items(), key=lambda kv: -kv[1])))
    ranked = sorted(raw.items(), key=lambda kv: -kv[1][1])[:top]
    for (filename, line, func), (_, nc, tt, _, _) in ranked:
        where = filename if filename == "~" else f"{filename.split('site-packages/')[-1].replace(str(ROOT) + '/', '')}:{line}"
        print(f"   {nc / calls:7.2f}/req  {tt / calls * 1e6:6.1f} µs  {func}  {where}")
    return total


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-calls-"))
    out_prefix = Path(args.save) if args.save else tmp / "prof"
    variants = {"gateway": ROOT, **({"baseline": Path(args.baseline)} if args.baseline else {})}
    async with bg.bench_database("bench_calls") as dsn:
        procs = bg.Processes()
        try:
            _, backend_url = bg.spawn_backend(procs)
            servers = tmp / "mcp_servers.yaml"
            servers.write_text(f"servers:\n  bench:\n    url: {backend_url}\n    type: http\n")
            pdp_port = bg.spawn_pdp(procs, tmp, dsn, bg.POLICY)
            async with running_issuer() as issuer, aiohttp.ClientSession() as session:
                await bg.wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
                argv = ["--servers", str(servers), "--pdp-url", f"http://127.0.0.1:{pdp_port}",
                        "--issuer", issuer.issuer, "--audience", bg.AUDIENCE]
                started: dict[str, tuple[int, str, Path]] = {}
                for label, root in variants.items():
                    port, out = bg.free_port(), Path(f"{out_prefix}.{label}")
                    env = {"DATABASE_URL": dsn, "MCPGW_DATA_DIR": str(tmp / label), "PYTHONPATH": str(root),
                           "AUDIT_LOG_FILE": str(tmp / f"audit-{label}.jsonl"),
                           "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600",
                           "MCPGW_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}"}
                    proc = procs.spawn([str(ROOT / "bench" / "count_gateway.py"), str(out), "--port", str(port), *argv],
                                       env, tmp)
                    started[label] = (proc.pid, f"http://127.0.0.1:{port}", out)
                if args.bare:
                    port, out = bg.free_port(), Path(f"{out_prefix}.bare")
                    proc = procs.spawn([str(ROOT / "bench" / "count_gateway.py"), str(out), str(ROOT / "bench" / "bare_gateway.py"),
                                        "--port", str(port), "--servers", str(servers)], {}, tmp)
                    started["bare"] = (proc.pid, f"http://127.0.0.1:{port}", out)
                token = issuer.mint(bg.SUBJECT, username=bg.SUBJECT, audience=bg.AUDIENCE, expires_in=7200)
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
                for _, url, _ in started.values():
                    await bg.wait_http(session, url + "/health")
                totals = {}
                for label, (pid, url, out) in started.items():
                    await profiled(url, pid, out, session, headers, args.calls)
                    totals[label] = summary(label, out, args.calls, args.top)
                print()
                for label, total in totals.items():
                    line = f"{label}: {total / args.calls:.0f} calls/request"
                    if "bare" in totals and label != "bare":
                        line += f" ({(total - totals['bare']) / args.calls:+.0f} above the bare floor)"
                    print(line)
        finally:
            procs.stop()


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 profiled calls instead of 1,000")
    parser.add_argument("--calls", type=int, help="profiled calls per gateway (default 1000)")
    parser.add_argument("--bare", action="store_true", help="also count bench/bare_gateway.py (the floor)")
    parser.add_argument("--baseline", metavar="DIR", help="also count the gateway of another checkout")
    parser.add_argument("--top", type=int, default=25, help="functions listed per gateway")
    parser.add_argument("--save", metavar="PREFIX", help="keep the pstats files as PREFIX.<label>")
    args = parser.parse_args()
    args.calls = args.calls or (200 if args.quick else 1000)
    args.baseline = args.baseline and str(Path(args.baseline).resolve())
    bg.run_main(run, args)


if __name__ == "__main__":
    main()
