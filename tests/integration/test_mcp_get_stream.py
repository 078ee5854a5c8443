"""`/mcp` relays server→client requests a 2025-era backend sends on its session's GET stream
(not tied to the call's request) — with the official SDK client, against an SDK backend and
`@modelcontextprotocol/server-everything` (whose `get-roots-list` asks `roots/list` there)."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.keys import UPSTREAM
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.fixtures.server_everything import needs_everything, server_everything
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ADMIN

GUARD = 20  # seconds: a lost request fails the test here instead of waiting for the 60 s timeouts


@pytest.fixture(scope="module")
def faithful(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("faithful-legacy", "fm-getstream")


@pytest.fixture(scope="module")
def everything_url() -> Iterator[str]:
    with server_everything() as url:
        yield url


async def _sampler(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"re: {asked}"),
                                     model="test-model")


async def _roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///work/project", name="project")])


def _client(stack: Stack, http: httpx2.AsyncClient, **callbacks: Any) -> Client:
    return Client(streamable_http_client(stack.url + "/mcp", http_client=http), mode="legacy",
                  read_timeout_seconds=GUARD, **callbacks)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, faithful: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"fm": {"url": faithful.url}}) as s:
        yield s


async def test_sampling_sent_on_the_sdk_backends_get_stream_reaches_the_agent(stack: Stack) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(ADMIN)}"})
    async with http, _client(stack, http, sampling_callback=_sampler) as client:
        result = await client.call_tool("fm__ask_aside", {"topic": "tides"})
        again = await client.call_tool("fm__ask_aside", {"topic": "moon"})  # a new stream, same session
    assert not result.is_error, result
    assert result.content[0].text == "llm said: re: tides"  # type: ignore[union-attr]
    assert again.content[0].text == "llm said: re: moon"  # type: ignore[union-attr]
    assert len(stack.app[UPSTREAM].get_streams) == 0  # closed once no call needs it


async def test_no_get_stream_for_an_agent_that_declared_nothing(stack: Stack) -> None:
    """Nothing can be asked of it (the backend was told so at initialize): no stream, no wait."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(ADMIN)}"})
    async with http, _client(stack, http) as client:
        result = await client.call_tool("fm__add", {"a": 1, "b": 2})
    assert result.content[0].text == "3"  # type: ignore[union-attr]
    assert len(stack.app[UPSTREAM].get_streams) == 0


@needs_everything
async def test_server_everything_roots_request_on_its_get_stream_is_answered(
    tmp_path: Path, pg_dsn: str, everything_url: str,
) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"every": {"url": everything_url}}) as stack:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(ADMIN)}"})
        async with http, _client(stack, http, list_roots_callback=_roots) as client:
            result = await client.call_tool("every__get-roots-list", {})
    assert not result.is_error, result
    text = result.content[0].text  # type: ignore[union-attr]
    assert "Current MCP Roots (1 total)" in text and "file:///work/project" in text, text
