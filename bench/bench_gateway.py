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

    .venv/bin/python bench/bench_gateway.py [--quick] [--rounds R] [--calls N] [--baseline DIR] [--traced]
        [--variant LABEL:K=V,K=V ...] [--subjects N]

`--bare` adds bench/bare_gateway.py (aiohttp's server + the gateway's upstream client, no checks):
the floor any gateway on this stack pays. `--variant LABEL:K=V,...` adds a gateway process running this code with extra environment (e.g.
`uvloop:MCPGW_EVENT_LOOP=uvloop` or `lanes64:MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY=64`) to the
same interleaved rounds. `--subjects N` adds a c=50 cell whose 50 workers spread over N subjects
(distinct tokens, so distinct per-(backend, subject) lanes) next to the one-subject c=50 cell.

`--traced` adds the same gateway with tracing on (sampling 1.0, OTLP/HTTP JSON to a loopback sink
in a process of its own, bench/otlp_sink.py) to the interleaved rounds: its CPU per call against "gateway" is
the tracing cost.

`--count N` runs each gateway under a counter (bench/count_gateway.py --tally) and prints the work per
call instead of times: Python and C function calls, garbage collections, allocated blocks
(bench/counting.py) — ratios no background load can move. `--instructions N` runs each gateway under valgrind's callgrind and prints instructions
per call (and, with `--cache-sim`, simulated cache misses) in N-call windows at c=1 and c=25
(bench/instructions.py): deterministic work, the exporter's encoding and POST counted. `--pairs K` replaces the rounds by K
cells loading two gateways at once (traced and untraced, ...; bench/paired.py): the median of
the per-cell CPU ratios, with its spread.

`--baseline DIR` adds a gateway process running another checkout's code (e.g. `git worktree add
/tmp/gw-base <commit>`) to the same interleaved rounds, so before/after figures share their noise
(with `--traced`, that checkout traced as well: "traced-baseline").

`--cprofile FILE` runs the gateway under cProfile the same way, `--yappi FILE` under yappi's CPU clock
(bench/yappi_gateway.py; `pip install yappi`). `--profile FILE` instead records the gateway process with py-spy (install it into .venv) while
load runs through it, and writes collapsed stacks to FILE (no figures are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import counting, instructions, paired  # noqa: E402
from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import Registry  # noqa: E402
from gateway.upstream import UpstreamPool, create_session  # noqa: E402
from shared import db  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402

AUDIENCE = "mcpgw"
SUBJECT = "bench@example.com"
MANY = 50  # subjects known to the policy for --subjects


def allow_policy(subjects: list[str], resource: str = "*") -> str:
    """A policy letting each of `subjects` do everything on `resource`; everyone else denied."""
    users = "".join(f"  {subject}: [caller]\n" for subject in subjects)
    return (f'roles:\n  caller:\n    permissions:\n      - resource: "{resource}"\n        actions: ["*"]\n'
            f"user_roles:\n{users}default_policy: deny\n")


POLICY = allow_policy([SUBJECT, *(f"bench{i}@example.com" for i in range(MANY))], "mcp:bench:*")
BODY = b'{"tool_name": "echo", "parameters": {"text": "hello"}}'


def free_port() -> int:
    """A port nothing listens on right now (tiny race; fine for a benchmark)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def pct(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


Call = Callable[[], Awaitable[None]]


async def measure(
    call: Call | list[Call], total: int, concurrency: int
) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, calls/s) for `total` calls at `concurrency`; a list of calls is spread
    over the workers (worker i uses calls[i % len])."""
    latencies: list[float] = []
    remaining = total
    calls = call if isinstance(call, list) else [call]

    async def worker(i: int) -> None:
        nonlocal remaining
        fn = calls[i % len(calls)]
        while remaining > 0:
            remaining -= 1
            start = time.perf_counter()
            await fn()
            latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    wall = time.perf_counter() - start
    return pct(latencies, 0.5), pct(latencies, 0.99), total / wall


class Processes:
    """Child processes, terminated in reverse order."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def spawn(self, args: list[str], env: dict[str, str], cwd: Path, *, capture: bool = False,
              wrap: list[str] | None = None) -> subprocess.Popen[str]:
        """Start `[wrap...] python args...` with ROOT importable (stdout piped only when asked: unread pipes fill)."""
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        out = subprocess.PIPE if capture else subprocess.DEVNULL
        proc = subprocess.Popen([*(wrap or []), sys.executable, *args], cwd=cwd, env=full_env, stdout=out, text=True)
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


@contextlib.asynccontextmanager
async def bench_database(prefix: str) -> AsyncIterator[str]:
    """A fresh database on the embedded Postgres (started if need be) for one run; dropped after."""
    dsn = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = f"{prefix}_{int(time.time())}"
    bench_dsn = await create_database(dsn, name)
    try:
        yield bench_dsn
    finally:
        await drop_database(dsn, name)


def spawn_backend(
    procs: Processes, name: str = "bench", kind: str = "stateless-json", tools: str = "", keep_alive: float = 5.0,
) -> tuple[subprocess.Popen[str], str]:
    """An official-SDK test backend in its own process; the process and its URL."""
    proc = procs.spawn(["-m", "tests.fixtures.backend_server", "--kind", kind, "--name", name, "--tools", tools,
                        "--keep-alive", str(keep_alive)], {}, ROOT, capture=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def spawn_pdp(procs: Processes, tmp: Path, dsn: str, policy: str) -> int:
    """The PDP (file mode, `policy` written under `tmp`) in its own process; its port."""
    (tmp / "policy.yaml").write_text(policy)
    port = free_port()
    procs.spawn(
        ["-m", "pdp", "--port", str(port), "--policy", str(tmp / "policy.yaml"), "--policy-source", "file"],
        {"DATABASE_URL": dsn, "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_DATA_DIR": str(tmp / "pdp"),
         "MCPGW_LOG_LEVEL": "WARNING"},
        tmp,
    )
    return port


async def run_with_stack(prefix: str, body: Callable[[str, Path, Processes], Awaitable[None]]) -> None:
    """A fresh database, a temp folder and a process set for one run; processes stopped and the
    database dropped after, whatever happened."""
    async with bench_database(prefix) as dsn:
        procs = Processes()
        try:
            await body(dsn, Path(tempfile.mkdtemp(prefix=f"mcpgw-{prefix}-")), procs)
        finally:
            procs.stop()


def run_main(run: Callable[[argparse.Namespace], Coroutine[Any, Any, None]], args: argparse.Namespace) -> None:
    """Quiet library logging, then run the bench coroutine."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


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


async def start_gateway(
    procs: Processes, root: Path, env: dict[str, str], argv: list[str], cprofile: str | None,
    yappi: str | None = None, count: str | None = None, callgrind: list[str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """One gateway process running the code under `root` (`callgrind`: the valgrind command, with
    bench/count_gateway.py --flush FILE); returns it and its base URL."""
    port = free_port()
    prefix = ["-m", "cProfile", "-o", cprofile] if cprofile else []
    module = [str(ROOT / "bench" / "yappi_gateway.py"), yappi] if yappi else ["-m", "gateway"]
    if count:
        module = [str(ROOT / "bench" / "count_gateway.py"), "--flush" if callgrind else "--tally", count]
    proc = procs.spawn(
        [*prefix, *module, "--port", str(port), *argv],
        # With auth on outside development the gateway needs its public URL (OAuth metadata).
        {**env, "MCPGW_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{port}", "PYTHONPATH": str(root)},
        Path(env["MCPGW_DATA_DIR"]).parent,  # not ROOT: its .env must not leak in
        wrap=callgrind,
    )
    return proc, f"http://127.0.0.1:{port}"


async def run(args: argparse.Namespace) -> None:
    async with bench_database("bench_gw") as bench_dsn:
        await _run(args, bench_dsn)


async def _run(args: argparse.Namespace, bench_dsn: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-bench-"))
    procs = Processes()
    # label -> code root; every variant gets its own process, all measured interleaved.
    variants = {"gateway": ROOT}
    if args.baseline:
        variants["baseline"] = Path(args.baseline)
    sink_url = None
    extra_env: dict[str, dict[str, str]] = {}
    for spec in args.variant:
        label, _, kvs = spec.partition(":")
        variants[label] = ROOT
        extra_env[label] = dict(kv.split("=", 1) for kv in kvs.split(",") if kv)
    try:
        if args.traced:  # same code, tracing on (sampling 1.0), exporting to a sink process of its own
            variants["traced"] = ROOT
            if args.baseline:  # the other checkout traced too: a before/after of tracing in one run
                variants["traced-baseline"] = Path(args.baseline)
            sink = procs.spawn([str(ROOT / "bench" / "otlp_sink.py")], {}, ROOT, capture=True)
            assert sink.stdout is not None
            sink_url = sink.stdout.readline().strip()
        # Under valgrind the gateway's 4 s idle close fires late: the backend must not close first (a 502).
        backend, backend_url = spawn_backend(procs, keep_alive=3600.0 if args.instructions else 5.0)
        servers = tmp / "mcp_servers.yaml"
        servers.write_text(f"servers:\n  bench:\n    url: {backend_url}\n    type: http\n")
        pdp_port = spawn_pdp(procs, tmp, bench_dsn, POLICY)
        async with running_issuer() as issuer, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0)
        ) as session:
            await wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
            argv = ["--servers", str(servers), "--pdp-url", f"http://127.0.0.1:{pdp_port}",
                    "--issuer", issuer.issuer, "--audience", AUDIENCE]
            gateways: dict[str, tuple[subprocess.Popen[str], str]] = {}
            callgrind = instructions.valgrind(tmp, args.cache_sim) if args.instructions else None
            for label, root in variants.items():
                env = {
                    "DATABASE_URL": bench_dsn,
                    "MCPGW_DATA_DIR": str(tmp / label),
                    "AUDIT_LOG_FILE": str(tmp / f"audit-{label}.jsonl"),
                    "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600",
                }
                cprofile = f"{args.cprofile}.{label}" if args.cprofile else None
                if label == "gateway":
                    env.update(kv.split("=", 1) for kv in args.env)
                env.update(extra_env.get(label, {}))
                if label.startswith("traced"):
                    env.update(MCPGW_OTEL_ENDPOINT=sink_url, MCPGW_OTEL_SAMPLE_RATIO=str(args.trace_ratio))
                yappi = f"{args.yappi}.{label}" if args.yappi else None
                count = str(tmp / f"count-{label}.json") if args.count else None
                if args.instructions:  # deferred work on request (count_gateway.py --flush); one hash seed
                    count = str(tmp / f"flushed-{label}")
                    env.update(MCPGW_AUDIT_FLUSH_INTERVAL="1000000", MCPGW_GATEWAY_TOOLS_CACHE_TTL="1000000",
                               PYTHONHASHSEED="0")
                gateways[label] = await start_gateway(procs, root, env, argv, cprofile, yappi, count, callgrind)
            if args.bare:
                port = free_port()
                loop = dict(kv.split("=", 1) for kv in args.env).get("MCPGW_EVENT_LOOP", "auto")
                prefix = [str(ROOT / "bench" / "yappi_gateway.py"), f"{args.yappi}.bare"] if args.yappi else []
                if callgrind:
                    prefix = [str(ROOT / "bench" / "count_gateway.py"), "--flush", str(tmp / "flushed-bare")]
                bare = procs.spawn([*prefix, str(ROOT / "bench" / "bare_gateway.py"), "--port", str(port), "--servers",
                                    str(servers), "--loop", loop], {"PYTHONHASHSEED": "0"} if callgrind else {}, tmp,
                                   wrap=callgrind)
                gateways["bare"] = (bare, f"http://127.0.0.1:{port}")
            for _, url in gateways.values():
                # Counting or valgrind slow start-up several times over (and more on a loaded machine).
                await wait_http(session, url + "/health", 300.0 if callgrind or args.count else 30.0)
            def headers_for(subject: str) -> dict[str, str]:
                token = issuer.mint(subject, username=subject, audience=AUDIENCE, expires_in=7200)
                return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

            headers = headers_for(SUBJECT)
            many = [headers_for(f"bench{i}@example.com") for i in range(min(args.subjects, MANY))]

            def via(url: str, headers: dict[str, str] = headers) -> Callable[[], Awaitable[None]]:
                invoke_url = url + "/mcp/invoke?mcp_server=bench"

                async def call() -> None:
                    for attempt in (1, 2):
                        try:
                            async with session.post(invoke_url, data=BODY, headers=headers) as resp:
                                text = await resp.read()
                                if resp.status != 200:
                                    raise RuntimeError(f"{url} answered {resp.status}: {text[:300]!r}")
                                return
                        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                            # A keep-alive connection the server closed (idle past its header
                            # timeout between cells) just as it was reused: once more, new connection.
                            if attempt == 2:
                                raise

                return call

            direct_session = create_session()
            registry = Registry(servers, credentials=CredentialStore(direct_session))
            registry.load()
            pool = UpstreamPool(direct_session, registry.credentials, registry)  # type: ignore[arg-type]

            async def direct() -> None:
                await pool.call_tool("bench", "echo", {"text": "hello"})

            paths = {"direct": direct, **{label: via(url) for label, (_, url) in gateways.items()}}
            spread: dict[str, list[Call]] = {
                label: [via(url, h) for h in many] for label, (_, url) in gateways.items()
            } if many else {}
            if args.profile or args.cprofile:
                gateways.pop("bare", None)
            try:
                for fn in paths.values():  # connections, era detection, token and decision caches
                    await measure(fn, args.warmup, 10)
                for fns in spread.values():
                    await measure(fns, args.warmup, len(fns))
                if args.instructions:
                    await instructions.report(args.instructions, {
                        label: instructions.Gateway(proc.pid, tmp, tmp / f"flushed-{label}")
                        for label, (proc, _) in gateways.items()}, paths, couples=paired.couples(
                            {label: proc.pid for label, (proc, _) in gateways.items()}) + [("bare", "gateway")])
                    return
                if args.count:
                    await counting.report(args.count, {label: (proc.pid, tmp / f"count-{label}.json")
                                                       for label, (proc, _) in gateways.items() if label != "bare"}, paths)
                    return
                if args.profile or args.cprofile or args.yappi:
                    for label, (proc, _) in gateways.items():
                        await profile(args, proc.pid, paths[label], label)
                    return
                pids = {label: proc.pid for label, (proc, _) in gateways.items()}
                if args.pairs:
                    await paired.report(paths, pids, paired.couples(pids), args.pairs, args.pair_calls)
                else:
                    await report(args, paths, pids, backend.pid, spread)
            finally:
                await direct_session.close()
            await asyncio.sleep(0.5)  # the gateways' audit writers flush every 0.2 s
            conn = await asyncpg.connect(bench_dsn)
            written = await conn.fetchval("SELECT count(*) FROM audit_events WHERE service = 'gateway'")
            await conn.close()
            print(f"gateway audit rows in Postgres: {written}")
            if sink_url is not None:
                await asyncio.sleep(5.5)  # the traced gateway posts what is left every 5 s
                async with aiohttp.ClientSession() as s, s.get(sink_url + "/count") as resp:
                    print(f"OTLP export requests received from the traced gateway: {await resp.text()}")
    finally:
        procs.stop()


def start_py_spy(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy recording `pid` into `output` as collapsed stacks until interrupted."""
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "1000",
         "--format", "raw", "--output", output, "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


async def profile(args: argparse.Namespace, pid: int, call: Callable[[], Awaitable[None]], label: str) -> None:
    """Record one gateway with py-spy (FILE.<label>) while load runs through it."""
    out = f"{args.profile}.{label}"
    spy = start_py_spy(pid, out) if args.profile else None
    await asyncio.sleep(1.0)  # py-spy attaches
    for concurrency in (1, 50):
        print(label, concurrency, await measure(call, args.calls * 3, concurrency), flush=True)
    if spy is not None:
        spy.send_signal(2)
        spy.wait(30)
        print(f"collapsed stacks in {out}")
    # --cprofile: the gateway writes its profile when it is terminated at the end of the run.


async def report(
    args: argparse.Namespace, paths: dict[str, Call], pids: dict[str, int], backend_pid: int,
    spread: dict[str, list[Call]] | None = None,
) -> None:
    """Interleaved rounds (the order rotates each round); per-round figures, then medians."""
    labels = list(paths)
    # (cell name, concurrency, spread over subjects?)
    kinds = [("1", 1, False), ("50", 50, False)]
    if spread:
        kinds.append((f"50x{len(next(iter(spread.values())))}s", 50, True))
    cells: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    cpu: dict[str, list[float]] = {}
    split: dict[str, list[tuple[float, float]]] = {}
    print(f"tools/call echo; {args.rounds} rounds; calls per cell: c=1 {args.calls}, c=50 {args.calls * 2}")
    for r in range(args.rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        if r % 2:
            order.reverse()
        line = []
        for kind, concurrency, spreads in kinds:
            for label in order:
                calls = args.calls * (2 if concurrency > 1 else 1)
                pid = pids.get(label)
                before = (cpu_split(pid), cpu_seconds(backend_pid)) if pid else ((0.0, 0.0), 0.0)
                fn: Call | list[Call] = spread[label] if spreads and spread and label in spread else paths[label]
                fig = await measure(fn, calls, concurrency)
                cpu_note = ""
                if pid:
                    user, system = cpu_split(pid)
                    used = (user - before[0][0], system - before[0][1])
                    cpu.setdefault(label, []).append(sum(used) / calls * 1e6)
                    split.setdefault(label, []).append((used[0] / calls * 1e6, used[1] / calls * 1e6))
                    cpu.setdefault(f"{label}:{kind}", []).append(sum(used) / calls * 1e6)
                    cpu.setdefault(label + ":backend", []).append((cpu_seconds(backend_pid) - before[1]) / calls * 1e6)
                    cpu_note = f" cpu {cpu[label][-1]:.0f}"
                cells.setdefault((kind, label), []).append(fig)
                line.append(f"c{kind} {label} {fig[0]:.3f}/{fig[1]:.3f}/{fig[2]:.0f}{cpu_note}")
        print(f"round {r + 1}: " + "  ".join(line), flush=True)
    print("\nmedians over rounds; latency ms, rate calls/s; added = median of per-round (path - direct)")
    print(f"{'conc':>6} {'path':>10} {'p50':>8} {'p99':>8} {'rate':>6} {'added p50':>9} {'added p99':>9} {'/direct':>7}")
    for kind, _, _ in kinds:
        d = cells[(kind, "direct")]
        for label in labels:
            g = cells[(kind, label)]
            med = [statistics.median(x[i] for x in g) for i in range(3)]
            row = f"{kind:>6} {label:>10} {med[0]:>8.3f} {med[1]:>8.3f} {med[2]:>6.0f}"
            if label != "direct":
                added50 = statistics.median(gi[0] - di[0] for di, gi in zip(d, g, strict=True))
                added99 = statistics.median(gi[1] - di[1] for di, gi in zip(d, g, strict=True))
                ratio = statistics.median(gi[2] / di[2] for di, gi in zip(d, g, strict=True))
                row += f" {added50:>9.3f} {added99:>9.3f} {ratio:>7.2f}"
            print(row)
    print("CPU µs per call through each gateway (median of its cells): " + ", ".join(
        f"{label} {statistics.median(cpu[label]):.0f} (user {statistics.median(u for u, _ in split[label]):.0f}"
        f" + sys {statistics.median(s for _, s in split[label]):.0f}; c=1 {statistics.median(cpu[label + ':1']):.0f};"
        f" backend {statistics.median(cpu[label + ':backend']):.0f})"
        for label in pids
    ))
    if len(pids) > 1:  # ratios within each round are the least noisy comparison
        first = next(iter(pids))
        for label in list(pids)[1:]:
            ratios = [b / a for a, b in zip(cpu[first], cpu[label], strict=True)]
            print(f"CPU per call {label}/{first}: median of per-cell ratios {statistics.median(ratios):.3f}")
    if "traced" in cpu and "gateway" in cpu:  # cells of one round and concurrency ran back to back: pair them
        added = [t - g for g, t in zip(cpu["gateway"], cpu["traced"], strict=True)]
        base = statistics.median(cpu["gateway"])
        print(f"tracing CPU per call, median of paired cells (traced - gateway): {statistics.median(added):+.0f} µs "
              f"({statistics.median(added) / base:+.1%} of the untraced gateway's {base:.0f} µs)")
    if "traced-baseline" in cpu and "baseline" in cpu:  # the other checkout's tracing cost, paired alike
        added = [t - g for g, t in zip(cpu["baseline"], cpu["traced-baseline"], strict=True)]
        base = statistics.median(cpu["baseline"])
        print(f"baseline's tracing CPU per call, median of paired cells (traced-baseline - baseline): "
              f"{statistics.median(added):+.0f} µs ({statistics.median(added) / base:+.1%} of {base:.0f} µs)")


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 300 calls (c=1) / 600 (c=50)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 7)")
    parser.add_argument("--calls", type=int, help="calls per c=1 cell (c=50 cells get twice as many; default 1000)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up calls per path")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra env for the gateway (experiments)")
    parser.add_argument("--traced", action="store_true",
                        help="also measure this gateway with tracing on (sampling 1.0, OTLP/JSON to a loopback sink)")
    parser.add_argument("--trace-ratio", type=float, default=1.0, help="sampling ratio of the --traced gateway")
    parser.add_argument("--variant", action="append", default=[], metavar="LABEL:K=V,...",
                        help="also measure this code with extra environment, as its own gateway process")
    parser.add_argument("--bare", action="store_true",
                        help="also measure bench/bare_gateway.py: aiohttp server + upstream client, no checks (the floor)")
    parser.add_argument("--subjects", type=int, default=0,
                        help=f"add a c=50 cell spread over N subjects (up to {MANY}; 0 = no such cell)")
    parser.add_argument("--baseline", metavar="DIR", help="also measure the gateway of another checkout (git worktree)")
    parser.add_argument("--profile", metavar="FILE", help="py-spy the gateway under load instead of measuring")
    parser.add_argument("--yappi", metavar="FILE",
                        help="run each gateway under yappi's CPU clock (pstats in FILE.<label>) while loading it")
    parser.add_argument("--count", type=int, metavar="N",
                        help="count work per call instead of timing it: N calls per gateway and round (bench/counting.py)")
    parser.add_argument("--instructions", type=int, metavar="N",
                        help="count instructions per call instead of timing: each gateway under callgrind, N calls per "
                             "window at c=1 and c=25 (bench/instructions.py; N <= 682 keeps a window's spans in one batch)")
    parser.add_argument("--cache-sim", action="store_true", help="with --instructions: simulate D1/LL caches too")
    parser.add_argument("--pairs", type=int, metavar="K",
                        help="instead of the rounds: K short paired cells per couple (traced vs untraced, ...), "
                             "ratio median and spread (bench/paired.py)")
    parser.add_argument("--pair-calls", type=int, default=300, help="calls per paired cell at c=1 (c=50: twice)")
    parser.add_argument("--cprofile", metavar="FILE", help="run each gateway under cProfile (FILE.<label>) while loading it")
    args = parser.parse_args()
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.calls = args.calls or (300 if args.quick else 1000)
    args.baseline = args.baseline and str(Path(args.baseline).resolve())
    run_main(run, args)


if __name__ == "__main__":
    main()
