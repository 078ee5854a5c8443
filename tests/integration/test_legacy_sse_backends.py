"""`type: sse` backends: a real SDK server in legacy HTTP+SSE mode (2024-11-05), bridged by the
gateway, through REST, `/mcp` and passthrough (both client eras)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.stdio_server import listening
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ADMIN,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def sse_server() -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.fixtures.stdio_server", "--sse", cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdout is not None
    url = (await proc.stdout.readline()).decode().strip()
    drain = asyncio.create_task(proc.stdout.read())  # uvicorn logs to stdout: never let the pipe fill
    await listening(url)  # until uvicorn accepts connections
    try:
        yield proc, url
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        await drain


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, sse_server: tuple[Any, str]) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"old": {"type": "sse", "url": sse_server[1]}}) as s:
        yield s


def call(rid: Any, tool: str, arguments: dict[str, Any], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    params: dict[str, Any] = {"name": tool, "arguments": arguments, **({"_meta": dict(meta)} if meta else {})}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call", "params": params}


async def test_legacy_sse_server_through_every_entry_point(stack: Stack, sse_server: tuple[Any, str]) -> None:
    status, body, _ = await stack.call("GET", "/mcp/servers")
    assert status == 200 and body["servers"][0]["url"] == sse_server[1], body  # its own URL, not the bridge's
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=old", json={"tool_name": "add", "parameters": {"a": 1, "b": 2}})
    assert status == 200 and body["result"]["content"][0]["text"] == "3", body
    sid = await initialize(stack, "/mcp")
    status, answer, _ = await rpc(stack, "/mcp", call(2, "old__echo", {"text": "aggregated"}), headers=session_headers(sid))
    assert status == 200 and answer["result"]["content"][0]["text"] == "aggregated", answer
    sid = await initialize(stack, "/servers/old/mcp")
    results = await asyncio.gather(*(
        rpc(stack, "/servers/old/mcp", call(9, "sleep", {"seconds": 0.2 - 0.05 * i, "text": f"c{i}"}),
            headers=session_headers(sid)) for i in range(4)))
    assert [r[1]["result"]["content"][0]["text"] for r in results] == ["c0", "c1", "c2", "c3"]
    status, answer, _ = await rpc(stack, "/servers/old/mcp", call(3, "echo", {"text": "modern"}, META),
                                  headers=modern_headers("tools/call", "echo"))
    assert status == 200 and answer["result"]["content"][0]["text"] == "modern", answer


async def test_progress_over_legacy_sse(stack: Stack) -> None:
    sid = await initialize(stack, "/servers/old/mcp")
    headers = {**stack.headers(ADMIN), "Accept": "application/json, text/event-stream", **session_headers(sid)}
    body = call(4, "progress", {"steps": 2}, {"progressToken": 11})
    async with stack.session.post(stack.url + "/servers/old/mcp", json=body, headers=headers) as resp:
        raw = await resp.text()
    messages = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    assert [m["params"]["progressToken"] for m in messages if m.get("method") == "notifications/progress"] == [11, 11]
    assert messages[-1]["result"]["content"][0]["text"] == "done 2"


async def test_a_gone_server_is_a_clear_error(stack: Stack, sse_server: tuple[Any, str]) -> None:
    status, _, _ = await stack.call("POST", "/mcp/invoke?mcp_server=old", json={"tool_name": "echo", "parameters": {"text": "x"}})
    assert status == 200
    sse_server[0].terminate()
    await sse_server[0].wait()
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=old", json={"tool_name": "echo", "parameters": {"text": "x"}})
    assert status in (502, 503) and "legacy SSE server old" in str(body), body
