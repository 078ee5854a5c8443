"""Exhaustion attacks (issue 9, item 5) against a real gateway process, one run, loopback only.

Each attack runs for a bounded time while a victim (another subject) calls `echo` on its own
stateless backend through REST at c=1; the figures are the gateway's peak RSS against its idle
figure (the target: within 2x) and the victim's p99 against its p99 with no attack in the same run
(the target: within +100 ms). Attacks:

- spew-mcp / spew-rest: a tool streaming 4 KB log notifications without end, 4 calls at a time,
  through `/mcp` (relayed as they come; 2026-07-28 backend) and REST (collected; 2025-era backend,
  which sends logs unasked); the per-call byte budget ends each.
- sampling-flood: a 2025-era backend asking 2,000 sampling requests at once of a `/mcp` agent that
  never answers; pending requests per subject are bounded, the rest refused to the backend.
- streams: one session opening 500 GET streams (per-session / per-subject limits answer 429) and
  320 listen streams from 10 subjects; the backend's list requests per second are counted.
- deletes: sessions created and DELETEd by 4 clients; DELETE p50 over the first and last 200, and
  the in-process cost of noting one revocation with 20,000 already noted against none.
- slow-calls: 40 concurrent 3 s calls of one subject on the victim's own backend.
- slowloris: 200 connections trickling headers and 200 sending a body one byte at a time.

    .venv/bin/python bench/bench_attacks.py [--quick] [--seconds S] [--only ATTACK] [--gateway-root DIR] [--env K=V]

`--gateway-root DIR` runs the gateway from another checkout (e.g. `git archive <commit> | tar -x -C
DIR`) against the same backends and attacks: the "before" figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_gateway as bg  # noqa: E402  (Processes, wait_http, free_port, pct, start_gateway)

from shared import db  # noqa: E402
from tests.fixtures.backend_server import start_backend  # noqa: E402
from tests.fixtures.oidc import running_issuer  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402

AUDIENCE, ATTACKER, VICTIM = "mcpgw", "attacker@example.com", "victim@example.com"
MODERN, HANDSHAKE = "2026-07-28", "2025-11-25"
ACCEPT = "application/json, text/event-stream"
POLICY = """
roles:
  caller:
    permissions:
      - resource: "*"
        actions: ["*"]
user_roles:
  attacker@example.com: [caller]
  victim@example.com: [caller]
""" + "".join(f"  user{i}@example.com: [caller]\n" for i in range(10)) + "default_policy: deny\n"


def rss_mb(pid: int) -> float:
    """Resident set size of `pid` in MB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Bench:
    """Handles on the running stack and the measurement helpers."""

    def __init__(self, session: aiohttp.ClientSession, url: str, pid: int, mint: Callable[[str], str],
                 root: Path) -> None:
        self.session, self.url, self.pid, self.mint, self.root = session, url, pid, mint, root
        self.tokens: dict[str, str] = {}

    def auth(self, subject: str) -> dict[str, str]:
        if subject not in self.tokens:
            self.tokens[subject] = self.mint(subject)
        return {"Authorization": f"Bearer {self.tokens[subject]}"}

    async def victim_loop(self, stop: asyncio.Event, latencies: list[float]) -> None:
        body = {"tool_name": "echo", "parameters": {"text": "hi"}}
        while not stop.is_set():
            start = time.perf_counter()
            async with self.session.post(self.url + "/mcp/invoke?mcp_server=victim", json=body,
                                         headers=self.auth(VICTIM)) as resp:
                await resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"victim call failed: HTTP {resp.status}")
            latencies.append(time.perf_counter() - start)

    async def run(self, name: str, attack: Callable[[asyncio.Event], Awaitable[str]], seconds: float,
                  idle_rss: float, base_p99: float) -> None:
        stop, latencies, peak = asyncio.Event(), list[float](), [rss_mb(self.pid)]

        async def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_mb(self.pid))
                await asyncio.sleep(0.05)

        helpers = [asyncio.create_task(self.victim_loop(stop, latencies)), asyncio.create_task(sample())]
        attacker = asyncio.create_task(attack(stop))
        await asyncio.sleep(seconds)
        stop.set()
        try:
            note = await asyncio.wait_for(attacker, 15)
        except TimeoutError:
            note = "attack cancelled after the window"
        await asyncio.gather(*helpers)
        p99 = bg.pct(latencies, 0.99)
        print(f"{name:15} RSS peak {peak[0]:6.1f} MB ({peak[0] / idle_rss:4.2f}x idle)   victim p50 "
              f"{bg.pct(latencies, 0.5):6.1f} ms  p99 {p99:6.1f} ms (+{p99 - base_p99:5.1f} ms, n={len(latencies)})   "
              f"{note}", flush=True)

    def mcp_headers(self, subject: str, method: str, name: str | None = None) -> dict[str, str]:
        h = {**self.auth(subject), "Accept": ACCEPT, "Content-Type": "application/json",
             "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
        return {**h, "Mcp-Name": name} if name else h

    async def initialize(self, subject: str) -> str:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": HANDSHAKE, "capabilities": {"sampling": {}},
                           "clientInfo": {"name": "bench", "version": "1"}}}
        headers = {**self.auth(subject), "Accept": ACCEPT, "Content-Type": "application/json"}
        async with self.session.post(self.url + "/mcp", json=body, headers=headers) as resp:
            await resp.read()
            return resp.headers["Mcp-Session-Id"]


async def attack_spew_mcp(b: Bench, stop: asyncio.Event) -> str:
    ended = [0, 0]

    async def one() -> None:
        meta = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/logLevel": "debug"}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": "hostile__spew", "arguments": {"count": 100_000, "size": 4000}, "_meta": meta}}
        async with b.session.post(b.url + "/mcp", json=body,
                                  headers=b.mcp_headers(ATTACKER, "tools/call", "hostile__spew")) as resp:
            last = b""
            async for line in resp.content:
                if stop.is_set():
                    return
                if line.startswith(b"data:"):
                    last = line
                    ended[0] += 1
            ended[1] += b"MAX_CALL_BYTES" in last

    async def loop() -> None:
        while not stop.is_set():
            await one()

    await asyncio.gather(*(loop() for _ in range(4)))
    return f"{ended[0]} events relayed, {ended[1]} calls ended by the byte budget"


async def attack_spew_rest(b: Bench, stop: asyncio.Event) -> str:
    statuses: dict[int, int] = {}

    async def loop() -> None:
        body = {"tool_name": "spew", "parameters": {"count": 100_000, "size": 4000}}
        while not stop.is_set():
            async with b.session.post(b.url + "/mcp/invoke?mcp_server=legacy", json=body,
                                      headers=b.auth(ATTACKER)) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1

    await asyncio.gather(*(loop() for _ in range(4)))
    return f"answers by status {statuses}"


async def attack_sampling_flood(b: Bench, stop: asyncio.Event) -> str:
    sid = await b.initialize(ATTACKER)
    asked = 0
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "legacy__flood", "arguments": {"count": 2000}}}
    headers = {**b.auth(ATTACKER), "Accept": ACCEPT, "Content-Type": "application/json",
               "Mcp-Session-Id": sid, "MCP-Protocol-Version": HANDSHAKE}
    result = "still waiting for its unanswered requests"

    async def read() -> None:
        nonlocal asked, result
        async with b.session.post(b.url + "/mcp", json=body, headers=headers) as resp:
            async for line in resp.content:
                if not line.startswith(b"data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("method") == "sampling/createMessage":
                    asked += 1  # never answered: these hold the subject's pending slots
                elif "result" in msg:
                    result = msg["result"]["content"][0]["text"]

    reader = asyncio.create_task(read())
    await stop.wait()
    reader.cancel()
    await asyncio.gather(reader, return_exceptions=True)
    return f"requests reaching the agent {asked} of 2000 (the rest refused to the backend); backend: {result}"


async def attack_streams(b: Bench, stop: asyncio.Event, poll_backend: Any) -> str:
    sid = await b.initialize(ATTACKER)
    headers = {**b.auth(ATTACKER), "Accept": "text/event-stream", "Mcp-Session-Id": sid,
               "MCP-Protocol-Version": HANDSHAKE}
    poll_backend.clear()
    start = time.monotonic()
    held: list[aiohttp.ClientResponse] = []
    statuses: dict[int, int] = {}
    listen = {"jsonrpc": "2.0", "id": "l", "method": "subscriptions/listen",
              "params": {"notifications": {"toolsListChanged": True},
                         "_meta": {"io.modelcontextprotocol/protocolVersion": MODERN,
                                   "io.modelcontextprotocol/clientCapabilities": {}}}}
    try:
        for _ in range(500):
            if stop.is_set():
                break
            resp = await b.session.get(b.url + "/mcp", headers=headers)
            statuses[resp.status] = statuses.get(resp.status, 0) + 1
            (held.append(resp) if resp.status == 200 else resp.release())
        for i in range(10 * 32):  # many subjects, within their limits: polling must still be shared
            if stop.is_set():
                break
            resp = await b.session.post(b.url + "/mcp", json=listen,
                                        headers=b.mcp_headers(f"user{i % 10}@example.com", "subscriptions/listen"))
            (held.append(resp) if resp.status == 200 else resp.release())
        await stop.wait()
    finally:
        for resp in held:
            resp.close()
    methods = [(r.json() or {}).get("method", "") for r in list(poll_backend.requests) if r.method == "POST"]
    lists = sum(1 for m in methods if m.endswith("/list"))
    elapsed = time.monotonic() - start
    return (f"one session's GETs by status {statuses}; {len(held)} streams open; backend list requests "
            f"{lists / elapsed:.2f}/s ({lists} in {elapsed:.0f} s; {len(methods) - lists} other requests)")


async def attack_deletes(b: Bench, stop: asyncio.Event) -> str:
    timings: list[float] = []
    headers = {**b.auth(ATTACKER), "MCP-Protocol-Version": HANDSHAKE}

    async def loop() -> None:
        while not stop.is_set():
            sid = await b.initialize(ATTACKER)
            start = time.perf_counter()
            async with b.session.delete(b.url + "/mcp", headers={**headers, "Mcp-Session-Id": sid}) as resp:
                await resp.read()
            timings.append(time.perf_counter() - start)

    await asyncio.gather(*(loop() for _ in range(4)))
    head, tail = timings[:200], timings[-200:]
    return (f"{len(timings)} DELETEs; p50 first 200 {bg.pct(head, 0.5):.2f} ms, last 200 "
            f"{bg.pct(tail, 0.5):.2f} ms; noting a revocation: {note_cost(b.root, 0):.1f} µs with none noted, "
            f"{note_cost(b.root, 20_000):.1f} µs with 20,000")


def note_cost(root: Path, existing: int, count: int = 20_000) -> float:
    """Microseconds per `SessionCodec.note_revoked` (what every replica does per DELETE) on top of
    `existing` revocations, with the gateway code under `root`."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("measured_sessions", root / "gateway" / "mcp" / "sessions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    codec, now = module.SessionCodec("k"), time.time()
    for i in range(existing):
        codec.note_revoked(f"{i:064x}", now + 3600 + i, now)
    keys = [f"{i + 10**6:064x}" for i in range(count)]
    start = time.perf_counter()
    for key in keys:
        codec.note_revoked(key, now + 3600, now)
    return (time.perf_counter() - start) / count * 1e6


async def attack_slow_calls(b: Bench, stop: asyncio.Event) -> str:
    statuses: dict[int, int] = {}

    async def one() -> None:
        while not stop.is_set():
            async with b.session.post(b.url + "/mcp/invoke?mcp_server=victim", headers=b.auth(ATTACKER),
                                      json={"tool_name": "sleep", "parameters": {"seconds": 3}}) as resp:
                await resp.read()
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
                if resp.status != 200:
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(one() for _ in range(40)))
    return f"attacker answers by status {statuses}"


async def attack_slowloris(b: Bench, stop: asyncio.Event) -> str:
    host, port = "127.0.0.1", int(b.url.rsplit(":", 1)[1])
    closed = [0, 0]
    token = b.auth(ATTACKER)["Authorization"]

    async def trickle(headers_only: bool) -> None:
        while not stop.is_set():
            reader, writer = await asyncio.open_connection(host, port)
            head = (b"POST /mcp/invoke?mcp_server=victim HTTP/1.1\r\nHost: x\r\n" if headers_only else
                    f"POST /mcp/invoke?mcp_server=victim HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n".encode())
            try:
                writer.write(head)
                answered = False
                while not stop.is_set() and not answered:
                    writer.write(b"a")
                    await writer.drain()
                    try:
                        async with asyncio.timeout(0.5):
                            await reader.read(1024)  # an answer (408) or EOF: the gateway let go
                            answered = True
                    except TimeoutError:
                        pass
                if answered:
                    closed[0 if headers_only else 1] += 1
            except (ConnectionError, OSError):
                closed[0 if headers_only else 1] += 1
            finally:
                writer.close()

    await asyncio.gather(*(trickle(i % 2 == 0) for i in range(400)))
    return f"connections cut by the gateway: slow headers {closed[0]}, slow bodies {closed[1]}"


async def run(args: argparse.Namespace) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="mcpgw-attacks-"))
    procs = bg.Processes()
    dsn = await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = f"bench_attacks_{int(time.time())}"
    bench_dsn = await create_database(dsn, name)
    poll_backend = start_backend("paged", "polled")  # in this process: its requests are counted here
    try:
        urls = {}
        for label, kind, tools in (("victim", "stateless-json", ""), ("hostile", "normal", "flood"),
                                   ("legacy", "legacy", "flood")):
            proc = procs.spawn(["-m", "tests.fixtures.backend_server", "--kind", kind, "--name", label,
                                "--tools", tools], {}, ROOT, capture=True)
            assert proc.stdout is not None
            urls[label] = proc.stdout.readline().strip()
        urls["polled"] = poll_backend.url
        (tmp / "policy.yaml").write_text(POLICY)
        servers = tmp / "mcp_servers.yaml"
        servers.write_text("servers:\n" + "".join(f"  {k}:\n    url: {u}\n    type: http\n    timeout: 30\n"
                                                  for k, u in urls.items()))
        pdp_port = bg.free_port()
        procs.spawn(["-m", "pdp", "--port", str(pdp_port), "--policy", str(tmp / "policy.yaml"),
                     "--policy-source", "file"],
                    {"DATABASE_URL": bench_dsn, "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_DATA_DIR": str(tmp / "pdp"),
                     "MCPGW_LOG_LEVEL": "WARNING"}, tmp)
        async with running_issuer() as issuer, aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=None)
        ) as session:
            await bg.wait_http(session, f"http://127.0.0.1:{pdp_port}/health")
            argv = ["--servers", str(servers), "--pdp-url", f"http://127.0.0.1:{pdp_port}",
                    "--issuer", issuer.issuer, "--audience", AUDIENCE]
            env = {"DATABASE_URL": bench_dsn, "MCPGW_DATA_DIR": str(tmp / "gw"),
                   "AUDIT_LOG_FILE": str(tmp / "audit.jsonl"), "MCPGW_GATEWAY_DECISION_CACHE_TTL": "3600",
                   "MCPGW_LOG_LEVEL": "ERROR", "MCPGW_GATEWAY_HEADER_TIMEOUT": "2", "MCPGW_GATEWAY_BODY_TIMEOUT": "2",
                   **dict(kv.split("=", 1) for kv in args.env)}
            proc, url = await bg.start_gateway(procs, Path(args.gateway_root or ROOT), env, argv, None)
            await bg.wait_http(session, url + "/health")
            b = Bench(session, url, proc.pid,
                      lambda s: issuer.mint(s, username=s, audience=AUDIENCE, expires_in=7200),
                      Path(args.gateway_root or ROOT))
            warm, quiet = asyncio.Event(), list[float]()
            loop = asyncio.create_task(b.victim_loop(warm, quiet))
            await asyncio.sleep(args.seconds)
            warm.set()
            await loop
            idle_rss, base_p99 = rss_mb(proc.pid), bg.pct(quiet[len(quiet) // 2:], 0.99)
            print(f"idle: gateway RSS {idle_rss:.1f} MB; victim alone p50 {bg.pct(quiet, 0.5):.1f} ms "
                  f"p99 {base_p99:.1f} ms (n={len(quiet)})", flush=True)
            attacks: dict[str, Callable[[asyncio.Event], Awaitable[str]]] = {
                "spew-mcp": lambda s: attack_spew_mcp(b, s),
                "spew-rest": lambda s: attack_spew_rest(b, s),
                "sampling-flood": lambda s: attack_sampling_flood(b, s),
                "streams": lambda s: attack_streams(b, s, poll_backend),
                "deletes": lambda s: attack_deletes(b, s),
                "slow-calls": lambda s: attack_slow_calls(b, s),
                "slowloris": lambda s: attack_slowloris(b, s),
            }
            for label, attack in attacks.items():
                if args.only and label not in args.only:
                    continue
                await b.run(label, attack, args.seconds, idle_rss, base_p99)
    finally:
        procs.stop()
        poll_backend.stop()
        await drop_database(dsn, name)


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s per attack")
    parser.add_argument("--seconds", type=float, help="seconds per attack (default 8)")
    parser.add_argument("--only", action="append", help="run only this attack (repeatable)")
    parser.add_argument("--env", action="append", default=[], metavar="K=V",
                        help="extra gateway environment (e.g. MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY=16)")
    parser.add_argument("--gateway-root", metavar="DIR", help="run the gateway of another checkout (before figures)")
    args = parser.parse_args()
    args.seconds = args.seconds or (3.0 if args.quick else 8.0)
    import logging

    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
