"""The SDK test backends behave as documented, checked with the official SDK client."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import aiohttp
import pytest
from mcp.client import Client

from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend,
    mcp_backend_500,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_legacy,
)


@pytest.mark.parametrize("mode", ["legacy", "auto"])
@pytest.mark.parametrize("which", ["mcp_backend", "mcp_backend_json", "mcp_backend_legacy"])
async def test_sdk_client_lists_and_calls(
    request: pytest.FixtureRequest, which: str, mode: str
) -> None:
    backend: Backend = request.getfixturevalue(which)
    async with Client(backend.url, mode=mode) as client:
        tools = await client.list_tools()
        assert {"echo", "add", "get_headers", "weather"} <= {t.name for t in tools.tools}
        result = await client.call_tool("add", {"a": 2, "b": 3})
        assert result.structured_content == {"result": 5}


async def test_legacy_backend_refuses_modern_probe(mcp_backend_legacy: Backend) -> None:
    mcp_backend_legacy.clear()
    async with Client(mcp_backend_legacy.url, mode="auto") as client:
        await client.list_tools()
    # the auto client probed discover first, then fell back to the handshake
    assert mcp_backend_legacy.methods()[:2] == ["server/discover", "initialize"]


async def test_500_backend_answers_500(mcp_backend_500: Backend) -> None:
    async with aiohttp.ClientSession() as s, s.post(mcp_backend_500.url, json={}) as r:
        assert r.status == 500
