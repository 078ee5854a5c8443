"""The upstream client refuses backend answers past MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES (JSON and SSE)."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.credentials import CredentialStore
from gateway.registry import ServerConfig, parse_servers
from gateway.upstream import ResponseTooLarge, UpstreamPool, create_session
from tests.fixtures.backends import (  # noqa: F401
    Backend,
    mcp_backend,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_legacy,
)
from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ADMIN

SETTING = "MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES"


def config(url: str) -> ServerConfig:
    servers, errors = parse_servers({"servers": {"srv": {"url": url, "timeout": 10}}})
    assert errors == []
    return servers["srv"]


@pytest.fixture
async def small_pool() -> AsyncIterator[UpstreamPool]:
    async with create_session() as session:
        yield UpstreamPool(session, CredentialStore(session, environ={}), max_response_bytes=16_384)


@pytest.mark.parametrize("which", ["mcp_backend", "mcp_backend_json", "mcp_backend_legacy"])
async def test_an_answer_past_the_cap_is_refused_and_the_client_stays_usable(
    request: pytest.FixtureRequest, small_pool: UpstreamPool, which: str
) -> None:
    backend: Backend = request.getfixturevalue(which)  # SSE, JSON, handshake era
    srv = config(backend.url)
    assert (await small_pool.call_tool(srv, "echo", {"text": "hi"}))["content"][0]["text"] == "hi"
    with pytest.raises(ResponseTooLarge) as caught:
        await small_pool.call_tool(srv, "echo", {"text": "x" * 40_000})
    assert caught.value.http_status == 502 and SETTING in str(caught.value) and "16384" in str(caught.value)
    assert "xxxx" not in str(caught.value)
    assert (await small_pool.call_tool(srv, "echo", {"text": "again"}))["content"][0]["text"] == "again"


async def test_rest_invoke_answers_502_naming_the_setting(
    tmp_path: Path, pg_dsn: str, mcp_backend: Backend
) -> None:
    big = "x" * 100_000
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env={SETTING: "65536"}) as stack:
        status, body, _ = await stack.call(
            "POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN,
            json={"tool_name": "echo", "parameters": {"text": big}},
        )
        assert status == 502 and SETTING in str(body) and "xxxx" not in str(body), body
        status, body, _ = await stack.call(
            "POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN,
            json={"tool_name": "echo", "parameters": {"text": "small"}},
        )
        assert status == 200 and body["result"]["content"][0]["text"] == "small"
