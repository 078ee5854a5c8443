"""A backend's own `notifications/tools/list_changed` has its catalog read at once (not at the next
poll): a real SDK backend adds a tool and announces it on `subscriptions/listen`; the `/mcp` agent
gets list_changed and the new tool with the poll interval an hour long. A handshake-era backend
saying it inside any answer — a tool call's own response stream on /mcp, a prompts/get on /mcp, a
passthrough call, a REST call — is heard the same way (gateway/upstream/sse.py: the one reader)."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import MCP_STATE
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ADMIN, initialize, rpc, session_headers
from tests.integration.pdp_helpers import eventually


@pytest.fixture
async def announcing(mcp_backend_factory: Any) -> Backend:
    backend: Backend = mcp_backend_factory("normal", "announcing", tools=("echo", "grow_announced"))
    return backend


@pytest.fixture
async def saying(mcp_backend_factory: Any) -> Backend:
    """A handshake-era backend announcing its change inside the tool call's own response stream."""
    backend: Backend = mcp_backend_factory("legacy", "saying", tools=("echo", "grow_said"))
    return backend


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, announcing: Backend, saying: Backend,
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    from gateway.mcp import listen

    monkeypatch.setattr(listen, "POLL_SECONDS", 3600.0)  # only the backend's announcement can make this pass
    async with gateway_stack(tmp_path, pg_dsn, {"an": {"url": announcing.url}, "sa": {"url": saying.url}}) as s:
        yield s


@contextlib.asynccontextmanager
async def watching(stack: Stack) -> AsyncIterator[tuple[str, Any]]:
    """A `/mcp` session and its open GET stream, once the poller read every backend and read it
    again when the backend's own stream opened (its listen acknowledged, its GET stream's 200)."""
    poller = stack.app[MCP_STATE].catalogs
    sid = await initialize(stack, "/mcp")
    hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
    async with stack.session.get(stack.url + "/mcp", headers=hdrs) as stream:
        assert stream.status == 200
        await eventually(lambda: _at_least(poller.rounds, 2), within=10)
        yield sid, stream


async def _next_method(stream: Any) -> str:
    async for line in stream.content:
        if line.startswith(b"data:"):
            method: str = json.loads(line[5:]).get("method")
            return method
    raise AssertionError("stream ended")


@pytest.mark.parametrize(("tool", "fresh"), [("an__grow_announced", "an__fresh_tool"),
                                             ("sa__grow_said", "sa__fresh_tool")],
                         ids=["on-listen-2026", "in-the-call-stream-2025"])
async def test_a_backends_list_changed_reaches_the_agent_without_waiting_for_the_poll(
        stack: Stack, tool: str, fresh: str) -> None:
    async with watching(stack) as (sid, stream):
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": tool, "arguments": {"name": "fresh_tool"}}}
        status, answer, _ = await rpc(stack, "/mcp", call, headers=session_headers(sid))
        assert status == 200 and "added fresh_tool" in str(answer), answer
        async with asyncio.timeout(10):  # the poll would take an hour
            assert await _next_method(stream) == "notifications/tools/list_changed"
    status, answer, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200 and fresh in {t["name"] for t in answer["result"]["tools"]}, answer


async def _at_least(value: int, floor: int) -> bool:
    return value >= floor


@pytest.mark.parametrize("way", ["mcp-prompts-get", "passthrough-call", "rest-invoke"])
async def test_a_list_changed_said_in_any_answer_is_heard(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Any, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    """Said inside the answer to a buffered request (prompts/get on /mcp, a REST call: the pool's
    request) or to a passthrough call relayed as it streams: the new tool is listed and callable on
    /mcp at once (the poll, an hour away, cannot be what finds it)."""
    from gateway.mcp import listen

    monkeypatch.setattr(listen, "POLL_SECONDS", 3600.0)
    backend = mcp_backend_factory("legacy", f"heard-{way}", tools=("echo", "grow_said", "grow_said_prompt"))
    async with gateway_stack(tmp_path, pg_dsn, {"sa": {"url": backend.url}}) as stack:
        async with watching(stack) as (sid, stream):
            assert "sa__fresh_tool" not in await _tools(stack, sid)
            grow = {"name": "fresh_tool"}
            if way == "mcp-prompts-get":
                message = {"jsonrpc": "2.0", "id": 2, "method": "prompts/get",
                           "params": {"name": "sa__grow_said", "arguments": grow}}
                status, answer, _ = await rpc(stack, "/mcp", message, headers=session_headers(sid))
            elif way == "passthrough-call":
                own = await initialize(stack, "/servers/sa/mcp")
                message = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                           "params": {"name": "grow_said", "arguments": grow}}
                status, answer, _ = await rpc(stack, "/servers/sa/mcp", message, headers=session_headers(own))
            else:
                status, answer, _ = await stack.call("POST", "/mcp/invoke?mcp_server=sa",
                                                     json={"tool_name": "grow_said", "parameters": grow})
            assert status == 200 and "added fresh_tool" in json.dumps(answer), answer
            async with asyncio.timeout(10):  # the poll would take an hour
                assert await _next_method(stream) == "notifications/tools/list_changed"
        assert "sa__fresh_tool" in await _tools(stack, sid)
        call = {"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "sa__fresh_tool", "arguments": {}}}
        status, answer, _ = await rpc(stack, "/mcp", call, headers=session_headers(sid))
        assert status == 200 and answer["result"]["content"][0]["text"] == "fresh_tool", answer


async def _tools(stack: Stack, sid: str) -> set[str]:
    status, answer, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200, answer
    return {t["name"] for t in answer["result"]["tools"]}
