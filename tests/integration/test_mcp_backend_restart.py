"""A backend that forgets its sessions (restart, expiry) heals on `/mcp` and REST; passthrough answers 404.

Real servers: `@modelcontextprotocol/server-everything` answers a stale session with HTTP 400
(the TypeScript SDK's README pattern); the Python SDK's server answers 404. docs/mcp.md.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import aiohttp

from gateway.keys import MCP_STATE, UPSTREAM
from tests.conformance import runner
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.fixtures.server_everything import needs_everything, server_everything
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

ENV = {"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret", "MCPGW_GATEWAY_TOOLS_CACHE_TTL": "0"}
LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}


def _uncached(stack: Stack) -> None:
    """Every list goes to the backend (the /mcp list cache would otherwise answer for 5 s)."""
    stack.app[MCP_STATE].lists.ttl = 0


async def _rest_echo(stack: Stack, server: str, tool: str, args: dict[str, object]) -> dict[str, object]:
    status, body, _ = await stack.call("POST", f"/mcp/invoke?mcp_server={server}", subject=ADMIN,
                                       json={"tool_name": tool, "parameters": args})
    assert status == 200 and body["success"] is True, body
    return body


async def _passthrough_list(stack: Stack, path: str, sid: str) -> tuple[int, object]:
    status, answer, _ = await rpc(stack, path, LIST, headers=session_headers(sid))
    return status, answer


@needs_everything
async def test_server_everything_restart_heals_mcp_and_rest_and_passthrough_asks_for_a_new_session(
    tmp_path: Path, pg_dsn: str,
) -> None:
    port = runner.free_port()
    with contextlib.ExitStack() as procs:
        first = contextlib.ExitStack()
        url = first.enter_context(server_everything(port))
        async with gateway_stack(tmp_path, pg_dsn, {"every": {"url": url}}, env=ENV) as stack, \
                sdk_session(stack, "/mcp", ADMIN, "legacy") as s:
            _uncached(stack)
            assert "every__echo" in {t.name for t in (await s.list_tools()).tools}
            assert (await s.call_tool("every__echo", {"message": "before"})).content[0].text == "Echo: before"
            await _rest_echo(stack, "every", "echo", {"message": "rest before"})
            passthrough = "/servers/every/mcp"
            old = await initialize(stack, passthrough)
            assert (await _passthrough_list(stack, passthrough, old))[0] == 200
            pool = stack.app[UPSTREAM]
            clients = [pool.client("every"), *pool.subjects.clients()]
            assert all(c.session_id for c in clients) and all(c.initialize_count == 1 for c in clients)

            first.close()  # the backend restarts on the same port and knows none of the sessions
            procs.enter_context(server_everything(port))

            # /mcp, same agent session, no reconfiguration: lists and calls keep working.
            assert "every__echo" in {t.name for t in (await s.list_tools()).tools}
            result = await s.call_tool("every__echo", {"message": "after"})
            assert not result.is_error and result.content[0].text == "Echo: after"
            body = await _rest_echo(stack, "every", "echo", {"message": "rest after"})
            assert body["result"]["content"][0]["text"] == "Echo: rest after"  # type: ignore[index]
            assert all(c.initialize_count == 2 for c in clients), [c.initialize_count for c in clients]

            # Passthrough: the agent's session wraps the forgotten one; 404 tells it to initialize again.
            status, answer = await _passthrough_list(stack, passthrough, old)
            assert status == 404 and answer["error"]["message"] == "Session not found", answer  # type: ignore[index]
            async with stack.session.get(stack.url + passthrough, headers={
                    **stack.headers(ADMIN), **session_headers(old), "Accept": "text/event-stream"}) as resp:
                assert resp.status == 404  # server-everything's GET said 400
            new = await initialize(stack, passthrough)
            status, answer = await _passthrough_list(stack, passthrough, new)
            assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}  # type: ignore[index]


async def test_sdk_backend_forgetting_sessions_404_heals_mcp_calls_and_passthrough_asks_for_a_new_session(
    tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend],
) -> None:
    backend = mcp_backend_factory("legacy", "legacy-restarting")
    async with gateway_stack(tmp_path, pg_dsn, {"sdk": {"url": backend.url}}, env=ENV) as stack, \
            sdk_session(stack, "/mcp", ADMIN, "legacy") as s:
        _uncached(stack)
        assert (await s.call_tool("sdk__echo", {"text": "1"})).content[0].text == "1"
        passthrough = "/servers/sdk/mcp"
        old = await initialize(stack, passthrough)
        assert (await _passthrough_list(stack, passthrough, old))[0] == 200
        modern = {**LIST, "params": {"_meta": META}}  # a 2026-07-28 agent: bridged through the pool
        assert (await rpc(stack, passthrough, modern, headers=modern_headers("tools/list")))[0] == 200
        # The backend forgets every session it handed out (as after an idle expiry): it now answers 404.
        forgotten = {r.headers["mcp-session-id"] for r in backend.requests if "mcp-session-id" in r.headers}
        async with aiohttp.ClientSession() as http:
            for sid in forgotten:
                async with http.delete(backend.url, headers={"Mcp-Session-Id": sid,
                                                              "MCP-Protocol-Version": "2025-11-25"}) as r:
                    assert r.status in (200, 204)
        backend.clear()
        result = await s.call_tool("sdk__echo", {"text": "2"})
        assert not result.is_error and result.content[0].text == "2"
        assert "sdk__echo" in {t.name for t in (await s.list_tools()).tools}
        sent = [(r.headers.get("mcp-session-id"), r.json()) for r in backend.requests if r.body]
        calls = [sid for sid, body in sent if isinstance(body, dict) and body.get("method") == "tools/call"]
        # Refused once in the forgotten session, sent again (and run) in a new one.
        assert len(calls) == 2 and calls[0] in forgotten and calls[1] not in forgotten, calls
        status, answer, _ = await rpc(stack, passthrough, modern, headers=modern_headers("tools/list"))
        assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}, answer
        status, answer = await _passthrough_list(stack, passthrough, old)
        assert status == 404, answer
        new = await initialize(stack, passthrough)
        assert (await _passthrough_list(stack, passthrough, new))[0] == 200
