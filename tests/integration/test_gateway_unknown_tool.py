"""`POST /mcp/invoke` for a tool the backend does not offer: 404, and nothing forwarded."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.keys import SERVERS, UPSTREAM
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, gateway_stack, servers_yaml
from tests.integration.test_gateway_rest import tool_calls

ADMIN, DEV = "admin@example.com", "dev@example.com"


@pytest.fixture
def backend(mcp_backend_factory) -> Backend:
    return mcp_backend_factory("stateless-json", "unknown-tool")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"beta": {"url": backend.url}}) as s:
        backend.clear()
        yield s


async def invoke(stack: Stack, tool: str, subject: str = ADMIN, **params: str) -> tuple[int, dict]:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke?mcp_server=beta", subject=subject, json={"tool_name": tool, "parameters": params}
    )
    return status, body


async def wait_for_tool_list(stack: Stack) -> None:
    pool = stack.app[UPSTREAM]
    async with asyncio.timeout(10):
        while pool.tool_names.tools("beta", stack.app[SERVERS].generation) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_unknown_tool_is_404_and_not_forwarded_once_the_list_is_known(stack: Stack, backend: Backend) -> None:
    # Cold: the catalog is listed first, and the 404 comes from it (calls/admit.py).
    status, body = await invoke(stack, "no_such_tool")
    assert status == 404 and body["error"]["code"] == "not_found"
    assert "no_such_tool" in body["error"]["message"] and "beta" in body["error"]["message"]
    assert tool_calls(backend) == []  # never forwarded, even cold
    await wait_for_tool_list(stack)
    backend.clear()
    status, body = await invoke(stack, "also_missing")
    assert status == 404 and "also_missing" in body["error"]["message"]
    assert tool_calls(backend) == []  # known absent: nothing reached the backend
    assert [r for r in backend.requests if b"tools/list" in r.body] == []  # and no list per call
    status, body = await invoke(stack, "echo", text="hi")
    assert status == 200 and body["success"] is True
    assert len(tool_calls(backend, "echo")) == 1


async def test_tool_errors_stay_200_with_success_false(stack: Stack) -> None:
    status, body = await invoke(stack, "fail")
    assert status == 200 and body["success"] is False and body["result"]["isError"] is True


async def test_denied_caller_gets_403_not_404(stack: Stack, backend: Backend) -> None:
    # dev may only call beta:echo; telling it that other names do not exist would leak the list.
    status, body = await invoke(stack, "no_such_tool", subject=DEV)
    assert status == 403
    assert tool_calls(backend) == []


async def test_a_registry_reload_forgets_the_tool_list(stack: Stack, tmp_path: Path, backend: Backend) -> None:
    await stack.call("GET", "/mcp/list-tools?mcp_server=beta")
    pool, registry = stack.app[UPSTREAM], stack.app[SERVERS]
    generation = registry.generation
    assert pool.tool_names.tools("beta", generation) is not None
    (tmp_path / "mcp_servers.yaml").write_text(servers_yaml({"beta": {"url": backend.url, "timeout": 9}}))
    registry.load()
    assert registry.generation != generation
    assert pool.tool_names.tools("beta", registry.generation) is None


async def test_concurrent_cold_calls_share_one_listing_and_a_stale_list_is_refreshed(
    stack: Stack, backend: Backend
) -> None:
    results = await asyncio.gather(*(invoke(stack, "echo", text=str(i)) for i in range(8)))
    assert [status for status, _ in results] == [200] * 8
    listings = [r for r in backend.requests if b"tools/list" in r.body]
    assert len(listings) == 1 and len(tool_calls(backend, "echo")) == 8
    pool = stack.app[UPSTREAM]
    pool.tool_names.forget("beta")  # as if the TTL had run out
    backend.clear()
    status, _ = await invoke(stack, "echo", text="again")
    assert status == 200 and len([r for r in backend.requests if b"tools/list" in r.body]) == 1
