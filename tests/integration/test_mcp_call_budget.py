"""A hostile backend cannot make one call fill the gateway: the per-call byte budget
(MCPGW_GATEWAY_MCP_MAX_CALL_BYTES) on the upstream client, `/mcp` and passthrough, and the bounded
server→client requests (MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS) — against real SDK backends."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.credentials import CredentialStore
from gateway.keys import MCP_STATE
from gateway.registry import ServerConfig, parse_servers
from gateway.upstream import CallBudgetExceeded, UpstreamPool, create_session
from gateway.upstream.sender import MAX_NOTES
from tests.fixtures.backends import ALL_TOOLS, Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)
from tests.integration.pdp_helpers import eventually

BUDGET = "MCPGW_GATEWAY_MCP_MAX_CALL_BYTES"
PENDING = "MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS"
TOOLS = (*ALL_TOOLS, "flood")


@pytest.fixture(scope="module")
def hostile(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("normal", "hostile", tools=TOOLS)


@pytest.fixture(scope="module")
def hostile_legacy(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("legacy", "hostile-legacy", tools=TOOLS)


def config(url: str) -> ServerConfig:
    servers, errors = parse_servers({"servers": {"srv": {"url": url, "timeout": 10}}})
    assert errors == []
    return servers["srv"]


def spew(rid: Any, count: int, size: int, name: str = "alpha__spew") -> dict[str, Any]:
    meta = {**META, "io.modelcontextprotocol/logLevel": "debug"}
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": name, "arguments": {"count": count, "size": size}, "_meta": meta}}


async def sse_messages(stack: Stack, path: str, body: dict[str, Any], headers: dict[str, str]) -> list[Any]:
    hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json", **headers}
    async with stack.session.post(stack.url + path, json=body, headers=hdrs) as resp:
        text = await resp.text()
        if resp.content_type == "application/json":
            # The budget ran out before the answer had started streaming (the backend's events
            # arrived in one read, e.g. on a loaded machine): one JSON-RPC error, no stream.
            return [json.loads(text)]
        assert resp.status == 200 and resp.content_type == "text/event-stream", text
    return [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]


@pytest.mark.parametrize("which", ["hostile", "hostile_legacy"])
async def test_the_upstream_client_ends_a_call_past_its_budget(request: pytest.FixtureRequest, which: str) -> None:
    backend: Backend = request.getfixturevalue(which)
    srv = config(backend.url)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}), max_call_bytes=65_536)
        params = {"name": "spew", "arguments": {"count": 400, "size": 1000},  # ~400 KB of log events
                  "_meta": {"io.modelcontextprotocol/logLevel": "debug"}}
        with pytest.raises(CallBudgetExceeded) as caught:
            await pool.exchange(srv, "tools/call", params)
        assert BUDGET in str(caught.value) and "65536" in str(caught.value) and "xxxx" not in str(caught.value)
        reply = await pool.exchange(srv, "tools/call", {"name": "echo", "arguments": {"text": "still here"}})
        assert reply.response["result"]["content"][0]["text"] == "still here"


async def test_a_reply_keeps_a_bounded_number_of_notifications(hostile: Backend) -> None:
    srv = config(hostile.url)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        params = {"name": "progress", "arguments": {"steps": MAX_NOTES + 50}, "_meta": {"progressToken": "t"}}
        reply = await pool.exchange(srv, "tools/call", params)
    assert reply.response["result"]["content"][0]["text"] == f"done {MAX_NOTES + 50}"
    assert len(reply.notifications) == MAX_NOTES


async def test_mcp_call_past_its_budget_ends_with_an_error_event(tmp_path: Path, pg_dsn: str, hostile: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": hostile.url}}, env={BUDGET: "65536"}) as stack:
        messages = await sse_messages(stack, "/mcp", spew(1, 400, 1000), modern_headers("tools/call", "alpha__spew"))
        relayed = [m for m in messages if m.get("method") == "notifications/message"]
        assert len(relayed) < 70  # what fitted in the budget (if anything) went through, the rest never did
        last = messages[-1]
        assert last["id"] == 1 and BUDGET in last["error"]["message"], last
        status, answer, _ = await rpc(stack, "/mcp", spew(2, 3, 10), ADMIN, modern_headers("tools/call", "alpha__spew"))
        assert status == 200 and answer["result"]["content"][0]["text"] == "sent 3", answer


async def test_mcp_call_past_its_budget_is_cancelled_on_a_2025_backend(
    tmp_path: Path, pg_dsn: str, hostile_legacy: Backend
) -> None:
    servers = {"alpha": {"url": hostile_legacy.url}}
    async with gateway_stack(tmp_path, pg_dsn, servers, env={BUDGET: "65536"}) as stack:
        sid = await initialize(stack, "/mcp")
        hostile_legacy.clear()
        messages = await sse_messages(stack, "/mcp", spew(1, 400, 1000), session_headers(sid))
        assert BUDGET in messages[-1]["error"]["message"]
        async def cancelled() -> bool:
            return any((r.json() or {}).get("method") == "notifications/cancelled"
                       for r in list(hostile_legacy.requests) if r.method == "POST")

        await eventually(cancelled)


async def test_passthrough_call_past_its_budget_ends_with_an_error_event(
    tmp_path: Path, pg_dsn: str, hostile: Backend
) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": hostile.url}}, env={BUDGET: "65536"}) as stack:
        path = "/servers/alpha/mcp"
        messages = await sse_messages(stack, path, spew(1, 400, 1000, "spew"), modern_headers("tools/call", "spew"))
        assert messages[-1]["id"] == 1 and BUDGET in messages[-1]["error"]["message"], messages[-1]
        status, answer, _ = await rpc(stack, path, spew(2, 3, 10, "spew"), ADMIN, modern_headers("tools/call", "spew"))
        assert status == 200 and answer["result"]["content"][0]["text"] == "sent 3", answer


async def test_passthrough_call_past_its_budget_is_cancelled_on_a_2025_backend(
    tmp_path: Path, pg_dsn: str, hostile_legacy: Backend
) -> None:
    servers = {"alpha": {"url": hostile_legacy.url}}
    async with gateway_stack(tmp_path, pg_dsn, servers, env={BUDGET: "65536"}) as stack:
        path = "/servers/alpha/mcp"
        sid = await initialize(stack, path)
        hostile_legacy.clear()
        messages = await sse_messages(stack, path, spew(1, 400, 1000, "spew"), session_headers(sid))
        assert messages[-1]["id"] == 1 and BUDGET in messages[-1]["error"]["message"], messages[-1]

        async def cancelled() -> bool:
            return any((r.json() or {}).get("method") == "notifications/cancelled"
                       and r.json()["params"]["requestId"] == 1 for r in list(hostile_legacy.requests)
                       if r.method == "POST")

        await eventually(cancelled)


@pytest.mark.parametrize("aside", [False, True], ids=["call-stream", "get-stream"])
async def test_a_flood_of_sampling_requests_is_bounded_and_refused_to_the_backend(
    tmp_path: Path, pg_dsn: str, hostile_legacy: Backend, aside: bool,
) -> None:
    """On the call's stream and on the session's GET stream alike (`aside`: no related request id)."""
    servers = {"alpha": {"url": hostile_legacy.url}}
    async with gateway_stack(tmp_path, pg_dsn, servers, env={PENDING: "4"}) as stack:
        state = stack.app[MCP_STATE]
        sid = await initialize(stack, "/mcp", capabilities={"sampling": {}} if aside else None)
        hostile_legacy.clear()
        body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                "params": {"name": "alpha__flood", "arguments": {"count": 30, "aside": aside}}}
        hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json", **session_headers(sid)}
        async with stack.session.post(stack.url + "/mcp", json=body, headers=hdrs) as resp:
            asked: list[Any] = []
            async with asyncio.timeout(20):  # a request lost on the way would hang here, not fail
                while len(asked) < 4:
                    line = (await resp.content.readline()).decode()
                    if line.startswith("data:"):
                        asked.append(json.loads(line[5:]))
            assert all(m["method"] == "sampling/createMessage" for m in asked)

            async def refused_all() -> bool:
                bodies = [r.json() for r in list(hostile_legacy.requests) if r.method == "POST" and r.body]
                refusals = [b for b in bodies if isinstance(b, dict) and PENDING in str(b.get("error", ""))]
                return len(refusals) == 26  # every request past the 4th is refused to the backend

            await eventually(refused_all)
            assert len(state.pending) == 4  # never more than the limit held in memory
            answer = {"role": "assistant", "content": {"type": "text", "text": "ok"}, "model": "m"}
            for m in asked:
                reply = {"jsonrpc": "2.0", "id": m["id"], "result": answer}
                status, _, _ = await rpc(stack, "/mcp", reply, ADMIN, session_headers(sid))
                assert status == 202
            rest = (await resp.text()).splitlines()
        final = [json.loads(line[5:]) for line in rest if line.startswith("data:")][-1]
        assert final["result"]["content"][0]["text"] == "answered 4 refused 26", final
        assert len(state.pending) == 0 and len(state.pending.subjects) == 0
