"""`type: stdio` backends: a real SDK server launched by the gateway, through every entry point.

The server (tests/fixtures/stdio_server.py) runs as a child of the gateway, speaking
newline-delimited JSON-RPC; the gateway exposes it on its internal loopback endpoint.
"""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import BRIDGE, SERVERS
from shared.redact import REDACTED
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ADMIN,
    META,
    initialize,
    modern_headers,
    rpc,
    sdk_session,
    session_headers,
)

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = {"type": "stdio", "command": sys.executable, "args": ["-m", "tests.fixtures.stdio_server"],
           "cwd": str(ROOT), "timeout": 20}


def call(rid: Any, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments}
    if meta:
        params["_meta"] = dict(meta)
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


def text(answer: dict[str, Any]) -> str:
    assert "result" in answer, answer
    return str(answer["result"]["content"][0]["text"])


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MCPGW_TEST_GATEWAY_SECRET", "gateway-only")
    monkeypatch.setenv("MCPGW_TEST_NAMED", "named-value")
    local = {**FIXTURE, "env": {"NAMED": "env://MCPGW_TEST_NAMED", "PLAIN": "literal"}}
    async with gateway_stack(tmp_path, pg_dsn, {"local": local}) as s:
        yield s


async def invoke(stack: Stack, tool: str, arguments: dict[str, Any]) -> tuple[int, Any]:
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=local",
                                       json={"tool_name": tool, "parameters": arguments})
    return status, body


async def test_every_entry_point_reaches_the_stdio_server(stack: Stack) -> None:
    status, body, _ = await stack.call("GET", "/mcp/servers")
    assert status == 200 and stack.app[BRIDGE].secret not in str(body)  # the internal path stays inside
    assert [(s["name"], s["url"], s["type"]) for s in body["servers"]] == [("local", "stdio://local", "stdio")], body
    status, body = await invoke(stack, "add", {"a": 2, "b": 3})
    assert status == 200 and body["result"]["content"][0]["text"] == "5", body
    # /mcp, aggregated and prefixed
    sid = await initialize(stack, "/mcp")
    status, answer, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200 and "local__echo" in {t["name"] for t in answer["result"]["tools"]}, answer
    status, answer, _ = await rpc(stack, "/mcp", call(3, "local__echo", {"text": "via /mcp"}), headers=session_headers(sid))
    assert status == 200 and text(answer) == "via /mcp"
    # passthrough, 2025 era (raw) and 2026 era (the SDK client)
    sid = await initialize(stack, "/servers/local/mcp")
    status, answer, _ = await rpc(stack, "/servers/local/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200 and {"echo", "crash", "progress"} <= {t["name"] for t in answer["result"]["tools"]}
    status, answer, _ = await rpc(stack, "/servers/local/mcp", call(3, "echo", {"text": "pass"}), headers=session_headers(sid))
    assert status == 200 and text(answer) == "pass"
    for mode in ("legacy", "modern"):  # the official SDK client in each era
        async with sdk_session(stack, "/servers/local/mcp", ADMIN, mode) as session:
            listed = await session.list_tools()
            assert "add" in {t.name for t in listed.tools}
            result = await session.call_tool("add", {"a": 20, "b": 22})
            assert result.content[0].text == "42"  # type: ignore[union-attr]
    # 2026-07-28 client: stateless requests, bridged to the server's handshake-era session
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
    status, answer, _ = await rpc(stack, "/servers/local/mcp", listing, headers=modern_headers("tools/list"))
    assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}, answer
    modern = call(2, "echo", {"text": "modern"}, META)
    status, answer, _ = await rpc(stack, "/servers/local/mcp", modern, headers=modern_headers("tools/call", "echo"))
    assert status == 200 and text(answer) == "modern" and answer["result"]["resultType"] == "complete"


async def test_concurrent_callers_get_their_own_answers(stack: Stack) -> None:
    sids = [await initialize(stack, "/servers/local/mcp") for _ in range(2)]
    # Both callers use the same JSON-RPC id; the slower call is sent first.
    results = await asyncio.gather(*(
        rpc(stack, "/servers/local/mcp", call(7, "sleep", {"seconds": 0.3 - 0.2 * i, "text": f"caller {i}"}),
            headers=session_headers(sid))
        for i, sid in enumerate(sids)
    ), *(invoke(stack, "echo", {"text": f"rest {i}"}) for i in range(5)))
    for i in range(2):
        status, answer, _ = results[i]
        assert status == 200 and answer["id"] == 7 and text(answer) == f"caller {i}"
    for i in range(5):
        status, body = results[2 + i]
        assert status == 200 and body["result"]["content"][0]["text"] == f"rest {i}"


async def test_progress_reaches_the_caller_with_its_own_token(stack: Stack) -> None:
    sid = await initialize(stack, "/servers/local/mcp")
    headers = {**stack.headers(ADMIN), "Accept": "application/json, text/event-stream", **session_headers(sid)}
    body = call(4, "progress", {"steps": 3}, {"progressToken": "my-token"})
    async with stack.session.post(stack.url + "/servers/local/mcp", json=body, headers=headers) as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        raw = await resp.text()
    import json

    messages = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [p["progress"] for p in progress] == [1, 2, 3]
    assert {p["progressToken"] for p in progress} == {"my-token"}
    assert text(messages[-1]) == "done 3" and messages[-1]["id"] == 4


async def test_crash_is_reported_and_the_server_restarts(stack: Stack) -> None:
    status, body = await invoke(stack, "pid", {})
    assert status == 200
    first = int(body["result"]["content"][0]["text"])
    status, body = await invoke(stack, "crash", {})
    assert status == 502 and "exited" in str(body), body
    status, body = await invoke(stack, "pid", {})
    assert status == 200, body
    assert int(body["result"]["content"][0]["text"]) != first
    with pytest.raises(ProcessLookupError):
        os.kill(first, 0)  # the crashed child was reaped, not left a zombie


async def test_environment_is_isolated(stack: Stack) -> None:
    # NAMED is given by reference: a secret, which the child has and the agent sees masked.
    for name, expected in (("MCPGW_TEST_GATEWAY_SECRET", "<unset>"), ("NAMED", REDACTED),
                           ("PLAIN", "literal"), ("DATABASE_URL", "<unset>")):
        status, body = await invoke(stack, "env", {"name": name})
        assert status == 200 and body["result"]["content"][0]["text"] == expected, (name, body)


async def test_an_edited_entry_replaces_the_process(stack: Stack) -> None:
    from tests.integration.gateway_harness import servers_yaml

    _, body = await invoke(stack, "pid", {})
    old_pid = int(body["result"]["content"][0]["text"])
    edited = {**FIXTURE, "env": {"PLAIN": "edited"}}
    stack.settings.servers_file.write_text(servers_yaml({"local": edited}))
    reloaded = asyncio.Event()
    registry = stack.app[SERVERS]
    registry.listeners.append(lambda servers: reloaded.set())
    await asyncio.wait_for(reloaded.wait(), 15)  # the watcher polls the file every 2 s
    status, body = await invoke(stack, "env", {"name": "PLAIN"})
    assert status == 200 and body["result"]["content"][0]["text"] == "edited", body
    await stack.app[BRIDGE].settled()
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)


async def test_a_call_past_its_timeout_is_cancelled_in_the_server_too(tmp_path: Path, pg_dsn: str) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"local": {**FIXTURE, "timeout": 1}}) as stack:
        status, body = await invoke(stack, "sleep", {"seconds": 30, "text": "late"})
        assert status == 504, body
        server = stack.app[BRIDGE].servers["local"]
        started = asyncio.get_running_loop().time()
        while server.pending:  # the bridge's own deadline (timeout + 1 s) frees the call
            assert asyncio.get_running_loop().time() - started < 10
            await asyncio.sleep(0.1)  # noqa: ASYNC110  (a deadline in another task; nothing to await)
        status, body = await invoke(stack, "echo", {"text": "next"})
        assert status == 200 and body["result"]["content"][0]["text"] == "next"


async def test_shutdown_leaves_no_child(tmp_path: Path, pg_dsn: str) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"local": FIXTURE}) as stack:
        status, body = await invoke(stack, "pid", {})
        assert status == 200
        pid = int(body["result"]["content"][0]["text"])
        os.kill(pid, 0)  # alive while the gateway runs
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_crash_loop_is_a_clear_error_not_a_hang(tmp_path: Path, pg_dsn: str) -> None:
    broken = {"type": "stdio", "command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]}
    missing = {"type": "stdio", "command": str(tmp_path / "no-such-program")}
    async with gateway_stack(tmp_path, pg_dsn, {"broken": broken, "missing": missing}) as stack:
        statuses, messages = [], []
        for _ in range(4):
            status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=broken",
                                               json={"tool_name": "x", "parameters": {}})
            statuses.append(status)
            messages.append(str(body))
        assert set(statuses) <= {502, 503}, statuses
        assert "failed to start" in messages[0]
        assert "crash-looping" in messages[-1], messages
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=missing",
                                           json={"tool_name": "x", "parameters": {}})
        assert status in (502, 503) and "cannot run" in str(body), body


def test_cli_registers_a_stdio_server(tmp_path: Path) -> None:
    import subprocess

    from gateway.registry import StdioConfig, load_servers_file

    path = tmp_path / "mcp_servers.yaml"
    path.write_text("servers: {}\n")

    def mcpgw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mcpgw.cli", *args, "--servers-file", str(path)],
                              capture_output=True, text=True, cwd=ROOT, timeout=30,
                              env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(ROOT),
                                   "MCPGW_URL": "http://127.0.0.1:1"})  # no gateway to ask

    out = mcpgw("register-mcp", "mem", "--command", "npx", "--arg=-y", "--arg", "@modelcontextprotocol/server-memory",
                "--env", "MEMORY_FILE_PATH=/tmp/m.jsonl", "--env", "TOKEN=env://MEM_TOKEN")
    assert out.returncode == 0, out.stderr
    config = load_servers_file(path, allowlist=["api.example.com"])["mem"]
    assert config.type == "stdio" and config.stdio == StdioConfig(
        "npx", ("-y", "@modelcontextprotocol/server-memory"),
        (("MEMORY_FILE_PATH", "/tmp/m.jsonl"), ("TOKEN", "env://MEM_TOKEN")))
    for bad, message in ((("x", "http://h/mcp", "--command", "npx"), "not both"),
                         (("x", "--env", "A=1"), "URL, or --command"),
                         (("x", "--command", "npx", "--env", "novalue"), "NAME=VALUE")):
        out = mcpgw("register-mcp", *bad)
        assert out.returncode == 2 and message in out.stderr, out.stderr
