"""The client matrix's Python SDK driver (matrix_clients.run_python) against a real aiohttp server on
loopback that answers a tools/call slower than httpx2's bare 5 s default: the agent must wait as an
SDK agent with its default HTTP client would (a loaded CI machine answered a FastMCP call in ~6 s,
and the bare default aborted the client and, with it, every cell sharing that backend's restart)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.integration.matrix_clients import run_python

SLOW_SECONDS = 6.0  # past httpx2's default 5 s read limit, within the SDK's per-request limit (20 s)


async def _mcp(request: web.Request) -> web.StreamResponse:
    if request.method != "POST":
        return web.Response(status=405)
    message: dict[str, Any] = await request.json()
    if "id" not in message:
        return web.Response(status=202)
    if message["method"] == "initialize":
        result: dict[str, Any] = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                                  "serverInfo": {"name": "slow", "version": "1"}}
    elif message["method"] == "tools/call":
        await asyncio.sleep(SLOW_SECONDS)
        result = {"content": [{"type": "text", "text": "slow answer"}], "isError": False}
    elif message["method"] == "tools/list":
        result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}
    else:
        return web.json_response({"jsonrpc": "2.0", "id": message["id"],
                                  "error": {"code": -32601, "message": "not here"}})
    return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": result},
                             headers={"Mcp-Session-Id": "s1"})


@pytest.fixture
async def slow_url() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_route("*", "/mcp", _mcp)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()


async def _no_wait(label: str) -> None:
    return None


async def test_a_call_answered_after_five_seconds_is_waited_for(slow_url: str) -> None:
    plan = {"tag": "slow", "steps": [{"op": "call", "key": "before", "name": "echo", "arguments": {}}]}
    report = await run_python(slow_url, "token", plan, _no_wait)
    assert report["before"].get("content") == [{"type": "text", "text": "slow answer"}], report
