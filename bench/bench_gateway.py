"""Gateway overhead: tools/call through the gateway vs straight to the same SDK backend, one run.

Three kinds of process, so no two of them share a GIL:
- the official-SDK MCP backend (stateless JSON), its own process;
- the PDP (file mode) and the gateway (`python -m gateway`), one process each; the gateway runs
  with JWT auth, policy (real PDP, decision cache warmed) and audit (embedded Postgres + JSONL) on;
- this process: the load generator (plus the OIDC issuer, hit only while warming up).

"Direct" calls the backend with the gateway's own upstream client (same framing code), "gateway"
posts `/mcp/invoke`; the difference is what the gateway adds: the REST hop, token check, policy
check, audit emit and forwarding. Rounds interleave direct and gateway cells (alternating which
goes first) so background noise hits both alike; the figures are medians over rounds, and
"added" is the median of the per-round differences.

    .venv/bin/python bench/bench_gateway.py [--quick] [--rounds R] [--calls N] [--uvloop]

`--profile FILE` instead records the gateway process with py-spy (install it into .venv) while
load runs through it, and writes collapsed stacks to FILE (no figures are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import Registry  # noqa: E402
from gateway.upstream import UpstreamPool, create_session  # noqa: E402
from shared import db  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402

AUDIENCE = "mcpgw"
SUBJECT = "bench@example.com"
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
BODY = b'{"tool_name": "echo", "parameters": {"text": "hello"}}'


def free_port() -> int:
    """A port nothing listens on right now (tiny race; fine for a benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def measure(call: Callable[[], Awaitable[None]], total: int, concurrency: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls/s) for `total` calls at `concurrency`."""
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
    wall = time.perf_counter() - start
    return pct(latencies, 0.5), pct(latencies, 0.99), total / wall


class Processes:
    """Child processes, terminated in reverse order."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, *, capture: bool = False) -> subprocess.Popen[str]:
        """Start `python args...` with ROOT importable (stdout piped only when asked: unread pipes fill)."""
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=full_env, stdout=out, text=True)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        """Terminate everything started."""
        for proc in reversed(self.procs):
            proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def wait_http(session: aiohttp.ClientSession, url: str, deadline: float = 30.0) -> None:
    """Poll `url` until it answers at all."""
    end = time.monotonic() + deadline
    while True:
        try:
            async with session.get(url) as resp:
                await resp.read()
                return
        except aiohttp.ClientError:
            if time.monotonic() > end:
                raise
            await asyncio.sleep(0.1)


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    procs = Processes()
    dsn = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = f"bench_gw_{int(time.time())}"
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    bench_dsn = db.with_database(dsn, name)
    try:
        backend = procs.spawn(["-m", "tests.fixtures.backend_server", "--kind", "stateless-json", "--name", "bench"], {}, ROOT, capture=True)
        assert backend.stdout is not None
        backend_url = backend.stdout.readline().strip()
        (tmp / "policy.yaml").write_text(POLICY)
        servers = tmp / "mcp_servers.yaml"
        servers.write_text(f"servers:\n  bench:\n    url: {backend_url}\n    type: http\n")
        pdp_port, gw_port = free_port(), free_port()
        procs.spawn(
            ["-m", "pdp", "--port", str(pdp_port), "--policy", str(tmp / "policy.yaml"), "--policy-source", "file"],
            {"DATABASE_URL": bench_dsn, "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_DATA_DIR": str(tmp / "pdp"),
             "MCPGW_LOG_LEVEL": "WARNING"},
            tmp,
        )
        async with running_issuer() as issuer, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)
        ) as session:
            await wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
            gw_env = {
                "DATABASE_URL": bench_dsn,
                "MCPGW_DATA_DIR": str(tmp / "gw"),
                "AUDIT_LOG_FILE": str(tmp / "audit.jsonl"),
                "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600",
            }
            if args.uvloop:
                gw_env["MCPGW_GATEWAY_UVLOOP"] = "true"
            gateway = procs.spawn(
                ["-m", "gateway", "--port", str(gw_port), "--servers", str(servers),
                 "--pdp-url", f"http://127.0.0.1:{pdp_port}", "--issuer", issuer.issuer, "--audience", AUDIENCE],
                gw_env, tmp,
            )
            gw_url = f"http://127.0.0.1:{gw_port}"
            await wait_http(session, gw_url + "/health")
            token = issuer.mint(SUBJECT, username=SUBJECT, audience=AUDIENCE, expires_in=7200)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            invoke_url = gw_url + "/mcp/invoke?mcp_server=bench"

            async def via_gateway() -> None:
                async with session.post(invoke_url, data=BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"gateway answered {resp.status}")

            direct_session = create_session()
            registry = Registry(servers, credentials=CredentialStore(direct_session))
            registry.load()
            pool = UpstreamPool(direct_session, registry.credentials, registry)  # type: ignore[arg-type]

            async def direct() -> None:
                await pool.call_tool("bench", "echo", {"text": "hello"})

            for fn in (via_gateway, direct):  # connections, era detection, token and decision caches
                await measure(fn, args.warmup, 10)
            if args.profile:
                await profile(args, gateway.pid, via_gateway)
                return
            await report(args, {"direct": direct, "gateway": via_gateway})
            await direct_session.close()
            await asyncio.sleep(0.5)  # the gateway's audit writer flushes every 0.2 s
            conn = await asyncpg.connect(bench_dsn)
            written = await conn.fetchval("SELECT count(*) FROM audit_events WHERE service = 'gateway'")
            await conn.close()
            print(f"gateway audit rows in Postgres: {written}")
    finally:
        procs.stop()
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


def start_py_spy(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` into `output` as collapsed stacks until interrupted."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "1000",
         "--format", "raw", "--output", output, "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def profile(args: argparse.Namespace, pid: int, call: Callable[[], Awaitable[None]]) -> None:
    """Record the gateway with py-spy while load runs through it."""
    spy = start_py_spy(pid, args.profile)
    await asyncio.sleep(1.0)  # py-spy attaches
    for concurrency in (1, 50):
        print(concurrency, await measure(call, args.calls * 3, concurrency), flush=True)
    spy.send_signal(2)
    spy.wait(30)
    print(f"collapsed stacks in {args.profile}")


async def report(args: argparse.Namespace, paths: dict[str, Callable[[], Awaitable[None]]]) -> None:
    """Interleaved rounds; print per-round figures, then medians."""
    cells: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    print(f"tools/call echo; {args.rounds} rounds; calls per cell: c=1 {args.calls}, c=50 {args.calls * 2}")
    for r in range(args.rounds):
        order = ["direct", "gateway"] if r % 2 == 0 else ["gateway", "direct"]
        line = []
        for concurrency in (1, 50):
            for label in order:
                fig = await measure(paths[label], args.calls * (2 if concurrency > 1 else 1), concurrency)
                cells.setdefault((concurrency, label), []).append(fig)
                line.append(f"c{concurrency} {label[0]} {fig[0]:.3f}/{fig[1]:.3f}/{fig[2]:.0f}")
        print(f"round {r + 1}: " + "  ".join(line), flush=True)
    print("\nmedians over rounds (latency ms; rate calls/s)")
    print(f"{'conc':>4} {'direct p50':>10} {'p99':>8} {'rate':>6} {'gw p50':>8} {'p99':>8} {'rate':>6}"
          f" {'added p50':>9} {'added p99':>9} {'gw/direct':>9}")
    for concurrency in (1, 50):
        d, g = cells[(concurrency, "direct")], cells[(concurrency, "gateway")]
        med = [statistics.median(x[i] for x in cells_) for cells_ in (d, g) for i in range(3)]
        added50 = statistics.median(gi[0] - di[0] for di, gi in zip(d, g, strict=True))
        added99 = statistics.median(gi[1] - di[1] for di, gi in zip(d, g, strict=True))
        ratio = statistics.median(gi[2] / di[2] for di, gi in zip(d, g, strict=True))
        print(f"{concurrency:>4} {med[0]:>10.3f} {med[1]:>8.3f} {med[2]:>6.0f} {med[3]:>8.3f} {med[4]:>8.3f}"
              f" {med[5]:>6.0f} {added50:>9.3f} {added99:>9.3f} {ratio:>9.2f}")


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 300 calls (c=1) / 600 (c=50)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7)")
    parser.add_argument("--calls", type=int, help="calls per c=1 cell (c=50 cells get twice as many; default 1000)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up calls per path")
    parser.add_argument("--uvloop", action="store_true", help="run the gateway on uvloop")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the gateway under load instead of measuring")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.calls = args.calls or (300 if args.quick else 1000)
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
