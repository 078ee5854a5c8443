"""Passthrough asks the PDP once per message (gateway/mcp/enforce.py `passthrough_target`).

"May the caller see this server" and the message's own check (a server-level method, an unknown
method) go in one PDP request, as a call's do; a list (`tools/list`) needs its one request before
forwarding, and the filtering of its answer afterwards. Counted from the gateway's /metrics, each
message on a server not asked about before (the decision cache cannot answer).
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import META, modern_headers, rpc

SERVERS = ("one", "two", "three", "four", "five", "six")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[Stack]:
    backend = mcp_backend_factory("stateless-json", "pdp-count")
    async with gateway_stack(tmp_path, pg_dsn, {name: {"url": backend.url} for name in SERVERS}) as s:
        yield s


async def pdp_requests(stack: Stack) -> float:
    _, text, _ = await stack.call("GET", "/metrics", subject=None)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mcpgw_gateway_pdp_request_duration_seconds_count"))


async def send(stack: Stack, server: str, method: str, params: dict[str, Any], subject: str | None = None) -> Any:
    message = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {**params, "_meta": META}}
    kw = {} if subject is None else {"subject": subject}
    return await rpc(stack, f"/servers/{server}/mcp", message, headers=modern_headers(method), **kw)


async def counted(stack: Stack, server: str, method: str, params: dict[str, Any], subject: str | None = None,
                  ) -> tuple[float, Any]:
    before = await pdp_requests(stack)
    status, answer, _ = await send(stack, server, method, params, subject)
    return await pdp_requests(stack) - before, (status, answer)


async def test_a_server_level_method_asks_once(stack: Stack) -> None:
    asked, (status, answer) = await counted(stack, "one", "server/discover", {})
    assert status == 200 and "result" in answer, answer
    assert asked == 1


async def test_an_unknown_method_asks_once(stack: Stack) -> None:
    asked, (_, answer) = await counted(stack, "two", "vendor/frobnicate", {})
    assert asked == 1
    assert answer["error"]["code"] == -32601, answer  # allowed, forwarded: the backend does not know it


async def test_a_list_asks_once_before_forwarding(stack: Stack) -> None:
    # One request to see the server, one to filter the tools the backend listed.
    asked, (status, answer) = await counted(stack, "three", "tools/list", {})
    assert status == 200 and answer["result"]["tools"], answer
    assert asked == 2


async def test_a_caller_who_may_not_see_the_server_is_told_it_is_unknown(stack: Stack) -> None:
    asked, (status, answer) = await counted(stack, "four", "server/discover", {}, subject="stranger@example.com")
    assert asked == 1
    assert status == 404 and "unknown or disabled MCP server 'four'" in answer["error"]["message"], answer
