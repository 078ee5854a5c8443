"""Server→client requests through `/servers/{name}/mcp`: relayed on the call's stream, answered by POST."""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conformance import runner
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, ADMIN, session_headers

PATH = "/servers/conf/mcp"


@pytest.fixture(scope="module")
def conf_url() -> Iterator[str]:
    with runner.conformance_backend() as url:
        yield url


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, conf_url: str) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"conf": {"url": conf_url}}) as s:
        yield s


async def _post(stack: Stack, body: dict[str, Any], sid: str | None = None) -> Any:
    headers = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json",
               **(session_headers(sid) if sid else {})}
    return await stack.session.post(stack.url + PATH, json=body, headers=headers)


async def _events(resp: Any) -> AsyncIterator[dict[str, Any]]:
    async for line in resp.content:
        if line.startswith(b"data:") and line[5:].strip():
            yield json.loads(line[5:])


async def test_sampling_round_trip_without_a_get_stream(stack: Stack) -> None:
    """The sampling request arrives on the tools/call stream, so no GET stream is needed.

    This is the deterministic form of the conformance flake: when the backend put the request on
    the session's GET stream, a client whose GET had not reached the backend yet never saw it.
    """
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {"sampling": {}},
                       "clientInfo": {"name": "t", "version": "1"}}}
    async with await _post(stack, init) as resp:
        assert resp.status == 200
        sid = resp.headers["Mcp-Session-Id"]
        await resp.read()
    async with await _post(stack, {"jsonrpc": "2.0", "method": "notifications/initialized"}, sid) as resp:
        assert resp.status == 202
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "test_sampling", "arguments": {"prompt": "hello"}}}
    async with asyncio.timeout(20), await _post(stack, call, sid) as resp:
        assert resp.content_type == "text/event-stream"
        seen: list[str] = []
        async for msg in _events(resp):
            if msg.get("method") == "sampling/createMessage":
                seen.append("request")
                answer = {"jsonrpc": "2.0", "id": msg["id"], "result": {
                    "role": "assistant", "content": {"type": "text", "text": "from the client"},
                    "model": "test-model", "stopReason": "endTurn"}}
                async with await _post(stack, answer, sid) as reply:
                    assert reply.status == 202
            elif msg.get("id") == 2:
                assert msg["result"]["content"][0]["text"] == "LLM response: from the client"
                seen.append("result")
                break
    assert seen == ["request", "result"]
