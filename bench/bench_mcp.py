"""MCP endpoints: tools/call through `/mcp` and `/servers/{name}/mcp` vs straight to the same SDK
backend, both eras; and tools/list aggregated over many backends with policy filtering. One run,
ratios from that run.

Processes (no two share a GIL): the official-SDK echo backend (stateless JSON); a process hosting
the list backends (N SDK servers × M tools, threads); the PDP; the gateway (`python -m gateway`,
JWT auth, real PDP, audit to Postgres + JSONL); this load generator. Every path is driven with the
same raw JSON-RPC client code, so the difference is what the gateway adds: token check, session
check, policy, audit and the forwarding hop. After a warm-up per path, every round measures every
path back to back (the order rotates and reverses each round, so background noise hits all alike);
figures are medians over rounds, "added" the median of per-round differences, and the gateway
process's CPU time per call comes from /proc (the figure least disturbed by other load).

Like for like: the gateway talks 2026-07-28 upstream to this SDK backend whatever era its client
speaks, so both `/mcp` rows are compared with "direct 2026-07-28"; the passthrough relays the
client's own handshake-era session, so it is compared with "direct 2025-11-25".

    .venv/bin/python bench/bench_mcp.py [--quick] [--rounds R] [--calls N] [--backends 20] [--tools 50]
    .venv/bin/python bench/bench_mcp.py --profile FILE   # py-spy the gateway per path (FILE.0, .1, .2)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_gateway as bg  # noqa: E402  (helpers: Processes, measure, wait_http, free_port)

from shared import db  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402

AUDIENCE, SUBJECT = "mcpgw", "bench@example.com"
MODERN, HANDSHAKE = "2026-07-28", "2025-11-25"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}
ACCEPT = "application/json, text/event-stream"
# Everything allowed except odd-numbered list tools: tools/list has real filtering to do.
POLICY = """
roles:
  caller:
    permissions:
      - resource: "*"
        actions: ["*"]
user_roles:
  bench@example.com: [caller]
rules:
  - name: "hide odd tools"
    condition:
      tool_name_pattern: "tool_[0-9]*[13579]"
    action: deny
    priority: 100
default_policy: deny
"""


def serve_backends(count: int, tools: int) -> None:
    """Child mode: `count` SDK servers with `tools` tools each, one thread per server."""
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    from tests.fixtures.backend_server import _bind

    def make(i: int) -> Any:
        mcp = MCPServer(f"list{i}")
        for t in range(tools):
            def tool(text: str = "") -> str:
                return text
            mcp.add_tool(tool, name=f"tool_{t}", description=f"Tool {t} of backend {i}")
        return mcp.streamable_http_app(stateless_http=True, json_response=True)

    for i in range(count):
        sock = _bind()
        server = uvicorn.Server(uvicorn.Config(make(i), log_level="warning", ws="none", access_log=False))
        threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True).start()
        print(f"http://127.0.0.1:{sock.getsockname()[1]}/mcp", flush=True)
    print("ready", flush=True)
    threading.Event().wait()


class Client:
    """Raw JSON-RPC over aiohttp for one endpoint and era (identical code for both paths)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, era: str, auth: dict[str, str]) -> None:
        self.session, self.url, self.era, self.auth = session, url, era, auth
        self.sid: str | None = None
        self.ids = 0

    async def post(self, method: str, params: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        self.ids += 1
        headers = {**self.auth, "Accept": ACCEPT, "Content-Type": "application/json"}
        if self.era == "modern":
            params = {**params, "_meta": META}
            headers.update({"MCP-Protocol-Version": MODERN, "Mcp-Method": method})
            if name:
                headers["Mcp-Name"] = name
        else:
            headers["MCP-Protocol-Version"] = HANDSHAKE
            if self.sid:
                headers["Mcp-Session-Id"] = self.sid
        body = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method, "params": params})
        async with self.session.post(self.url, data=body, headers=headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{self.url} {method}: HTTP {resp.status} {raw[:200]!r}")
            if self.sid is None and resp.headers.get("Mcp-Session-Id"):
                self.sid = resp.headers["Mcp-Session-Id"]
            return json.loads(raw)

    async def open(self) -> None:
        if self.era == "handshake":
            await self.post("initialize", {"protocolVersion": HANDSHAKE, "capabilities": {},
                                           "clientInfo": {"name": "bench", "version": "1"}})

    async def call(self, tool: str) -> None:
        answer = await self.post("tools/call", {"name": tool, "arguments": {"text": "hello"}}, tool)
        if "result" not in answer or answer["result"].get("isError"):
            raise RuntimeError(f"call failed: {answer}")


async def compare(args: argparse.Namespace, paths: dict[str, Any], gw_pid: int, backend_pid: int) -> None:
    """Interleaved rounds over every path (order rotates); medians, ratios and gateway CPU per call."""
    labels = list(paths)
    cells: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    cpu: dict[str, list[float]] = {}
    for r in range(args.rounds):
        order = labels[r % len(labels):] + labels[:r % len(labels)]
        if r % 2:
            order.reverse()
        for concurrency in (1, 10):
            for label in order:
                before = (bg.cpu_seconds(gw_pid), bg.cpu_seconds(backend_pid))
                fig = await bg.measure(paths[label], args.calls, concurrency)
                cpu.setdefault(label, []).append((bg.cpu_seconds(gw_pid) - before[0]) / args.calls * 1e6)
                cpu.setdefault(label + ":backend", []).append((bg.cpu_seconds(backend_pid) - before[1]) / args.calls * 1e6)
                cells.setdefault((concurrency, label), []).append(fig)
        print(f"round {r + 1} done", flush=True)
    print(f"\ntools/call echo: medians of {args.rounds} rounds x {args.calls} calls per cell (ms, calls/s);"
          " added/ratio against the direct path named in brackets (median of per-round differences)")
    print(f"{'conc':>4} {'path':>24} {'p50':>7} {'p99':>7} {'rate':>6} {'added p50':>9} {'added p99':>9}"
          f" {'rate ratio':>10} {'gw CPU µs':>9} {'backend CPU µs':>14}")
    for concurrency in (1, 10):
        for label in labels:
            g = cells[(concurrency, label)]
            med = [statistics.median(x[i] for x in g) for i in range(3)]
            row = f"{concurrency:>4} {label:>24} {med[0]:>7.3f} {med[1]:>7.3f} {med[2]:>6.0f}"
            base = BASELINE.get(label)
            if base:
                d = cells[(concurrency, base)]
                added50 = statistics.median(gi[0] - di[0] for di, gi in zip(d, g, strict=True))
                added99 = statistics.median(gi[1] - di[1] for di, gi in zip(d, g, strict=True))
                ratio = statistics.median(gi[2] / di[2] for di, gi in zip(d, g, strict=True))
                row += f" {added50:>9.3f} {added99:>9.3f} {ratio:>10.2f}"
                row += f" {statistics.median(cpu[label]):>9.0f} {statistics.median(cpu[label + ':backend']):>14.0f}"
                row += f"  [{base}]"
            else:
                row += f" {'':>9} {'':>9} {'':>10} {'':>9} {statistics.median(cpu[label + ':backend']):>14.0f}"
            print(row)


# Each gateway path against the direct path speaking the era the gateway itself uses upstream (the
# SDK backend answers server/discover, so the gateway talks 2026-07-28 to it for both client eras);
# "direct 2025-11-25" is printed too, for the client-era view.
REST = "REST /mcp/invoke"
BASELINE = {"/mcp 2026-07-28": "direct 2026-07-28", "/mcp 2025-11-25": "direct 2026-07-28",
            "/servers/bench/mcp 2025-11-25": "direct 2025-11-25", REST: "direct 2026-07-28"}


def rest_call(session: aiohttp.ClientSession, gw_url: str, auth: dict[str, str]) -> Any:
    """The same echo call through the gateway's REST `POST /mcp/invoke`."""
    url = gw_url + "/mcp/invoke?mcp_server=bench"
    headers = {**auth, "Content-Type": "application/json"}
    body = json.dumps({"tool_name": "echo", "parameters": {"text": "hello"}})

    async def call() -> None:
        async with session.post(url, data=body, headers=headers) as resp:
            raw = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"/mcp/invoke: HTTP {resp.status} {raw[:200]!r}")

    return call


async def list_figures(args: argparse.Namespace, gw: Client, list_urls: list[str],
                       session: aiohttp.ClientSession) -> None:
    """Aggregated tools/list latency (cold and warm) against listing every backend directly."""
    start = time.perf_counter()
    first = await gw.post("tools/list", {})
    cold = (time.perf_counter() - start) * 1000
    visible = 0
    cursor = None
    while True:
        page = await gw.post("tools/list", {"cursor": cursor} if cursor else {})
        visible += len(page["result"]["tools"])
        cursor = page["result"].get("nextCursor")
        if not cursor:
            break
    directs = [Client(session, url, "modern", {}) for url in list_urls]

    async def direct_all() -> None:
        await asyncio.gather(*(c.post("tools/list", {}) for c in directs))

    async def via_gateway() -> None:
        await gw.post("tools/list", {})

    n = max(20, args.calls // 5)
    d = await bg.measure(direct_all, n, 1)
    g = await bg.measure(via_gateway, n, 1)
    total = args.backends * args.tools + 8
    print(f"\ntools/list over {args.backends} backends x {args.tools} tools (+8 on the echo backend): "
          f"{visible} of {total} visible after policy, in pages of {len(first['result']['tools'])}")
    print(f"  first call (cold caches): {cold:.1f} ms")
    print(f"  /mcp tools/list p50 {g[0]:.3f} ms, p99 {g[1]:.3f} ms ({n} calls, list cache 5 s, decision cache on)")
    print(f"  all {args.backends} backends listed directly and concurrently: p50 {d[0]:.3f} ms, p99 {d[1]:.3f} ms")
    print(f"  ratio /mcp p50 / direct-all p50: {g[0] / d[0]:.2f}")


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-bench-mcp-"))
    procs = bg.Processes()
    dsn = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = f"bench_mcp_{int(time.time())}"
    bench_dsn = await create_database(dsn, name)
    try:
        echo = procs.spawn(["-m", "tests.fixtures.backend_server", "--kind", "stateless-json", "--name", "bench"],
                           {}, ROOT, capture=True)
        assert echo.stdout is not None
        echo_url = echo.stdout.readline().strip()
        lists = procs.spawn([str(Path(__file__)), "--serve-backends", str(args.backends), "--tools", str(args.tools)],
                            {}, ROOT, capture=True)
        assert lists.stdout is not None
        list_urls = []
        while (line := lists.stdout.readline().strip()) != "ready":
            list_urls.append(line)
        (tmp / "policy.yaml").write_text(POLICY)
        servers = tmp / "mcp_servers.yaml"
        entries = [f"  bench:\n    url: {echo_url}\n"] + [f"  list{i:02d}:\n    url: {u}\n" for i, u in enumerate(list_urls)]
        servers.write_text("servers:\n" + "".join(entries))
        pdp_port, gw_port = bg.free_port(), bg.free_port()
        procs.spawn(["-m", "pdp", "--port", str(pdp_port), "--policy", str(tmp / "policy.yaml"), "--policy-source", "file"],
                    {"DATABASE_URL": bench_dsn, "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_DATA_DIR": str(tmp / "pdp"),
                     "MCPGW_LOG_LEVEL": "WARNING"}, tmp)
        async with running_issuer() as issuer, aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            await bg.wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
            gw = procs.spawn(["-m", "gateway", "--port", str(gw_port), "--servers", str(servers),
                         "--pdp-url", f"http://127.0.0.1:{pdp_port}", "--issuer", issuer.issuer, "--audience", AUDIENCE],
                        {"DATABASE_URL": bench_dsn, "MCPGW_DATA_DIR": str(tmp / "gw"), "AUDIT_LOG_FILE": str(tmp / "audit.jsonl"),
                         "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600", "MCPGW_LOG_LEVEL": "WARNING",
                         "MCPGW_GATEWAY_PUBLIC_URL": f"http://127.0.0.1:{gw_port}"}, tmp)
            gw_url = f"http://127.0.0.1:{gw_port}"
            await bg.wait_http(session, gw_url + "/health")
            token = issuer.mint(SUBJECT, username=SUBJECT, audience=AUDIENCE, expires_in=7200)
            auth = {"Authorization": f"Bearer {token}"}
            eras = {"handshake": HANDSHAKE, "modern": MODERN}
            clients = {f"direct {eras[e]}": Client(session, echo_url, e, {}) for e in ("modern", "handshake")}
            clients |= {f"/mcp {eras[e]}": Client(session, gw_url + "/mcp", e, auth) for e in ("modern", "handshake")}
            # The passthrough relays bytes to one backend: only handshake-era sessions exist there.
            clients["/servers/bench/mcp 2025-11-25"] = Client(session, gw_url + "/servers/bench/mcp", "handshake", auth)
            paths: dict[str, Any] = {}
            for label, c in clients.items():
                await c.open()
                tool = "bench__echo" if label.startswith("/mcp") else "echo"
                paths[label] = lambda c=c, tool=tool: c.call(tool)
                await bg.measure(paths[label], args.warmup, 10)
            # The REST path to the same backend call, so `/mcp`'s gateway CPU is compared in one run.
            paths[REST] = rest_call(session, gw_url, auth)
            await bg.measure(paths[REST], args.warmup, 10)
            if args.profile:
                await profile(args, gw.pid, paths)
                return
            await compare(args, paths, gw.pid, echo.pid)
            await list_figures(args, Client(session, gw_url + "/mcp", "modern", auth), list_urls, session)
    finally:
        procs.stop()
        await drop_database(dsn, name)


async def profile(args: argparse.Namespace, pid: int, paths: dict[str, Any]) -> None:
    """py-spy the gateway (collapsed stacks in FILE.<n>) while each gateway path runs under load."""
    for n, label in enumerate(p for p in paths if not p.startswith("direct")):
        out = f"{args.profile}.{n}"
        spy = bg.start_py_spy(pid, out)
        await asyncio.sleep(1.0)  # py-spy attaches
        print(label, await bg.measure(paths[label], args.calls * 3, 10), flush=True)
        spy.send_signal(2)
        spy.wait(30)
        print(f"{label}: collapsed stacks in {out}", flush=True)


def main() -> None:
    """Parse flags and run (or serve list backends in child mode)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 rounds of 200 calls per cell")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--calls", type=int)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--backends", type=int, default=20)
    parser.add_argument("--tools", type=int, default=50)
    parser.add_argument("--profile", metavar="FILE", help="py-spy the gateway under load per path instead of measuring")
    parser.add_argument("--serve-backends", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backends:
        serve_backends(args.serve_backends, args.tools)
        return
    args.rounds = args.rounds or (3 if args.quick else 7)
    args.calls = args.calls or (200 if args.quick else 1000)
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
