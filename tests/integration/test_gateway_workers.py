"""`mcpgw gateway serve --workers N`: N processes on one port, sharing MCP sessions like replicas.

Real processes (the `mcpgw` command), a real PDP and a real SDK backend. Every request opens a new
connection, so the kernel spreads them over the workers; a session id minted by one worker must be
valid on the others (the parent hands them one secret).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from gateway.workers import child_argv, child_env
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import POLICY, servers_yaml, start_pdp
from tests.integration.pdp_process import clean_env, free_port

ACCEPT = "application/json, text/event-stream"


def children_of(pid: int) -> list[int]:
    """Live child processes of `pid` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


async def post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    """One request on a fresh connection (so consecutive requests may reach different workers)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http, http.post(
            url, json=body, headers={"Accept": ACCEPT, **(headers or {})}) as resp:
        text = await resp.text()
        answer = {} if not text else (await resp.json(content_type=None) if "{" in text[:2] else {"raw": text})
        return resp.status, answer, dict(resp.headers)


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        assert proc.poll() is None, "the gateway exited during start"
        try:
            async with aiohttp.ClientSession() as http, http.get(url + "/health") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway did not answer /health")


@pytest.fixture
async def workers(tmp_path: Path, pg_dsn: str, mcp_backend: Backend):  # noqa: F811
    async with serving(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as running:
        yield running


@contextlib.asynccontextmanager
async def serving(tmp_path: Path, pg_dsn: str, backends: dict):
    """`mcpgw gateway serve --workers 2 --no-auth` in front of `backends`: (process, base URL)."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    runner, pdp_url = await start_pdp(policy, pg_dsn)
    servers = tmp_path / "servers.yaml"
    servers.write_text(servers_yaml(backends))
    port = free_port()
    env = clean_env(DATABASE_URL=pg_dsn, MCPGW_DATA_DIR=str(tmp_path / "gw"), MCPGW_LOG_FORMAT="text",
                    MCPGW_GATEWAY_DEV_ROLES="admin")
    cmd = [sys.executable, "-m", "mcpgw.cli", "gateway", "serve", "--port", port, "--workers", "2", "--no-auth",
           "--servers", str(servers), "--pdp-url", pdp_url]
    proc = await asyncio.to_thread(subprocess.Popen, cmd, env=env, stdout=subprocess.DEVNULL,
                                   stderr=(tmp_path / "gw.log").open("wb"))  # noqa: ASYNC230
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_up(url, proc)
        yield proc, url
    finally:
        kids = children_of(proc.pid)  # before the kill: afterwards they belong to init
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pid in kids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        await runner.cleanup()


async def test_two_workers_share_the_port_and_the_sessions(workers) -> None:
    proc, url = workers
    kids = children_of(proc.pid)
    assert len(kids) == 2, kids
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    status, answer, headers = await post(url + "/mcp", init)
    assert status == 200, answer
    session = {"Mcp-Session-Id": headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
    # 24 fresh connections: both workers answer some (1 in 2^23 that one takes all), and a
    # session one of them minted is valid on the other.
    for i in range(24):
        call = {"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                "params": {"name": "alpha__echo", "arguments": {"text": f"n{i}"}}}
        status, answer, _ = await post(url + "/mcp", call, session)
        assert status == 200 and answer["result"]["content"][0]["text"].endswith(f"n{i}"), answer


async def test_sigterm_stops_every_worker(workers) -> None:
    proc, _ = workers
    kids = children_of(proc.pid)
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 30) == 0
    assert kids and not any(alive(pid) for pid in kids)


async def test_a_dead_worker_stops_the_rest(workers) -> None:
    proc, _ = workers
    kids = children_of(proc.pid)
    os.kill(kids[0], signal.SIGKILL)  # one worker dies: the parent stops the other and fails
    assert await asyncio.to_thread(proc.wait, 30) != 0
    assert not any(alive(pid) for pid in kids)


def test_children_run_the_same_command_with_one_shared_secret() -> None:
    argv = ["gateway", "serve", "--port", "8000", "--workers", "4", "--no-auth", "--workers=3"]
    assert child_argv(argv)[1:] == ["-m", "mcpgw.cli", "gateway", "serve", "--port", "8000", "--no-auth", "--worker"]
    made = child_env({"PATH": "/bin"}, has_secret=False)
    assert len(made["MCPGW_GATEWAY_MCP_SESSION_SECRET"]) >= 32
    assert "MCPGW_GATEWAY_MCP_SESSION_SECRET" not in child_env({"PATH": "/bin"}, has_secret=True)
    # The peer channel: a loopback listener each (port 0, keyed by the shared session secret), unless configured.
    assert child_env({"PATH": "/bin"}, has_secret=True, has_peer_listen=False)["MCPGW_GATEWAY_PEER_LISTEN"] == "127.0.0.1:0"
    assert "MCPGW_GATEWAY_PEER_LISTEN" not in child_env({"PATH": "/bin"}, has_secret=True, has_peer_listen=True)


CAPS_2026 = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
             "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
SAMPLED = {"role": "assistant", "content": {"type": "text", "text": "tides"}, "model": "m"}
ROUNDS = 8  # each retry has even odds of the other worker: all on one is 1 in 2^8


def modern_call(rid: int, topic: str, **extra: object) -> tuple[dict, dict[str, str]]:
    body = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": "ask__ask_and_wait", "arguments": {"topic": topic}, "_meta": CAPS_2026, **extra}}
    return body, {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "ask__ask_and_wait"}


async def test_held_calls_answer_on_whichever_worker_the_retry_reaches(tmp_path: Path, pg_dsn: str,
                                                                      mcp_backend_factory) -> None:  # noqa: F811
    """2026-07-28 agents' retries, 2025 agents' answers: each on a fresh connection, so about half reach
    the worker not holding the call (forwarded over the peer channel the parent set up)."""
    asking = mcp_backend_factory("asking-legacy", "asking")
    async with serving(tmp_path, pg_dsn, {"ask": {"url": asking.url}}) as (_, url):
        for i in range(ROUNDS):
            body, headers = modern_call(100 + i, f"w{i}")
            status, first, _ = await post(url + "/mcp", body, headers)
            assert status == 200 and first["result"]["resultType"] == "input_required", first
            (key,) = first["result"]["inputRequests"]
            body, headers = modern_call(200 + i, f"w{i}", inputResponses={key: SAMPLED},
                                        requestState=first["result"]["requestState"])
            status, final, _ = await post(url + "/mcp", body, headers)
            assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", (i, final)
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"sampling": {}}, "clientInfo": {"name": "t", "version": "1"}}}
        _, _, headers = await post(url + "/mcp", init)
        session = {"Mcp-Session-Id": headers["Mcp-Session-Id"], "MCP-Protocol-Version": "2025-11-25"}
        async with aiohttp.ClientSession() as http:
            for i in range(ROUNDS):
                call = {"jsonrpc": "2.0", "id": 300 + i, "method": "tools/call",
                        "params": {"name": "ask__ask_and_wait", "arguments": {"topic": f"v{i}"}}}
                async with asyncio.timeout(30), http.post(url + "/mcp", json=call,
                                                          headers={"Accept": ACCEPT, **session}) as resp:
                    async for line in resp.content:
                        if line.startswith(b"data:"):
                            asked = json.loads(line[5:])
                            break
                    answer = {"jsonrpc": "2.0", "id": asked["id"], "result": SAMPLED}
                    status, _, _ = await post(url + "/mcp", answer, session)
                    assert status == 202
                    rest = (await resp.read()).decode()
                done = [json.loads(line[5:]) for line in rest.splitlines() if line.startswith("data:")]
                assert done[-1]["result"]["content"][0]["text"] == "llm said: tides", (i, done)
