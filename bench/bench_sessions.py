"""Gateway memory with many open agent sessions on `/mcp` (issue 10 goal: 1,000 sessions ≤ 150 MB RSS).

One gateway process (JWT, real PDP, audit), one official-SDK backend (2026-07-28, stateless JSON),
the load generator in this process. Each agent is its own subject (its own token), as 1,000 agents
would be: it initializes a 2025-11-25 session on `/mcp`, sends `notifications/initialized`, lists
the tools, calls `echo` once, then opens the session's GET stream (what the SDK clients do) and
keeps it open. RSS (VmRSS of the gateway) is read idle, after the sessions are made (no streams),
and with every stream open; the per-session figures are the differences divided by N.

    .venv/bin/python bench/bench_sessions.py [--quick] [--sessions N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_gateway as bg  # noqa: E402
from bench_attacks import rss_mb  # noqa: E402

from tests.fixtures.oidc import running_issuer  # noqa: E402

AUDIENCE = "mcpgw"
HANDSHAKE = "2025-11-25"
ACCEPT = "application/json, text/event-stream"


class Agent:
    """One agent: its token, its session id, its open GET stream."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self.http, self.url, self.token = session, url, token
        self.sid = ""
        self.stream: aiohttp.ClientResponse | None = None

    def headers(self) -> dict[str, str]:
        h = {"Authorization": f"Bearer {self.token}", "Accept": ACCEPT, "Content-Type": "application/json"}
        if self.sid:
            h.update({"Mcp-Session-Id": self.sid, "MCP-Protocol-Version": HANDSHAKE})
        return h

    async def post(self, message: dict[str, object]) -> bytes:
        async with self.http.post(self.url + "/mcp", json=message, headers=self.headers()) as resp:
            body = await resp.read()
            if resp.status not in (200, 202):
                raise RuntimeError(f"{message.get('method')}: HTTP {resp.status}: {body[:200]!r}")
            if message.get("method") == "initialize":
                self.sid = resp.headers["Mcp-Session-Id"]
            return body

    async def start(self) -> None:
        await self.post({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": HANDSHAKE, "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}})
        await self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        await self.post({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        await self.post({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                         "params": {"name": "bench__echo", "arguments": {"text": "hi"}}})

    async def listen(self) -> None:
        headers = {k: v for k, v in self.headers().items() if k != "Content-Type"}
        headers["Accept"] = "text/event-stream"
        self.stream = await self.http.get(self.url + "/mcp", headers=headers)
        if self.stream.status != 200:
            raise RuntimeError(f"GET stream: HTTP {self.stream.status}: {(await self.stream.read())[:200]!r}")


async def settle(pid: int) -> float:
    """RSS after the gateway has had a moment to finish what it was doing."""
    await asyncio.sleep(1.5)
    return rss_mb(pid)


async def run(args: argparse.Namespace) -> None:
    await bg.run_with_stack("bench_sess", lambda dsn, tmp, procs: _run(args, dsn, tmp, procs))


async def _run(args: argparse.Namespace, bench_dsn: str, tmp: Path, procs: bg.Processes) -> None:
    _, backend_url = bg.spawn_backend(procs)
    servers = tmp / "mcp_servers.yaml"
    servers.write_text(f"servers:\n  bench:\n    url: {backend_url}\n    type: http\n")
    subjects = [f"agent{i}@example.com" for i in range(args.sessions)]
    pdp_port = bg.spawn_pdp(procs, tmp, bench_dsn, bg.allow_policy(subjects, "mcp:bench:*"))
    async with running_issuer() as issuer, aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=120, sock_read=None)
    ) as session:
        await bg.wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
        argv = ["--servers", str(servers), "--pdp-url", f"http://127.0.0.1:{pdp_port}",
                "--issuer", issuer.issuer, "--audience", AUDIENCE]
        env = {"DATABASE_URL": bench_dsn, "MCPGW_DATA_DIR": str(tmp / "gw"), "AUDIT_LOG_FILE": str(tmp / "audit.jsonl"),
               "MCPGW_LOG_LEVEL": "ERROR", **dict(kv.split("=", 1) for kv in args.env)}
        proc, url = await bg.start_gateway(procs, ROOT, env, argv, None)
        await bg.wait_http(session, url + "/health")
        tokens = [issuer.mint(s, username=s, audience=AUDIENCE, expires_in=7200) for s in subjects]
        agents = [Agent(session, url, t) for t in tokens]
        for agent in agents[:5]:  # warm: imports, connections, catalog, era detection
            await agent.start()
        started = await settle(proc.pid)
        print(f"gateway RSS after 5 warm-up sessions: {started:.1f} MB", flush=True)
        sem = asyncio.Semaphore(20)

        async def start(agent: Agent) -> None:
            async with sem:
                await agent.start()

        t0 = time.perf_counter()
        await asyncio.gather(*(start(a) for a in agents[5:]))
        made = await settle(proc.pid)
        print(f"{args.sessions} sessions made (initialize, tools/list, one call each) in "
              f"{time.perf_counter() - t0:.1f} s: RSS {made:.1f} MB (+{(made - started) * 1024 / args.sessions:.1f} KB "
              "per session)", flush=True)
        await asyncio.gather(*(a.listen() for a in agents))
        streaming = await settle(proc.pid)
        print(f"{args.sessions} GET streams open: RSS {streaming:.1f} MB (+{(streaming - made) * 1024 / args.sessions:.1f} KB "
              f"per stream); goal <= 150 MB: {'met' if streaming <= 150 else 'NOT met'}", flush=True)
        for agent in agents:
            if agent.stream is not None:
                agent.stream.close()
        after = await settle(proc.pid)
        print(f"streams closed by the agents: RSS {after:.1f} MB", flush=True)
        gc.collect()


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 sessions")
    parser.add_argument("--sessions", type=int, help="agent sessions (default 1000)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V", help="extra gateway environment")
    args = parser.parse_args()
    args.sessions = args.sessions or (200 if args.quick else 1000)
    bg.run_main(run, args)


if __name__ == "__main__":
    main()
