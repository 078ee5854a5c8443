"""`/mcp` beyond tools: prompts and resources aggregated, paging, and sessions across replicas."""
# ruff: noqa: F811

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from mcp import types
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.settings import load_gateway_settings
from tests.conformance import runner
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import initialize, rpc, sdk_session, session_headers

ADMIN, DEV = "admin@example.com", "dev@example.com"


@pytest.fixture(scope="module")
def conf_url() -> Iterator[str]:
    with runner.conformance_backend() as url:
        yield url


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, conf_url: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn, {"conf": {"url": conf_url}, "alpha": {"url": mcp_backend.url}},
        env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "shared-secret", "MCPGW_GATEWAY_MCP_PAGE_SIZE": "4"},
    ) as s:
        yield s


async def test_prompts_and_resources_aggregated(stack: Stack) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, "legacy") as s:
        prompts = {p.name for p in (await s.list_prompts()).prompts}
        assert "conf__test_simple_prompt" in prompts
        got = await s.get_prompt("conf__test_prompt_with_arguments", {"arg1": "x", "arg2": "y"})
        assert "arg1='x'" in got.messages[0].content.text
        uris = {str(r.uri) for r in (await s.list_resources()).resources}
        assert "mcpgw://conf/test://static-text" in uris
        read = await s.read_resource("mcpgw://conf/test://static-text")
        assert read.contents[0].text == "This is the content of the static text resource."
        templates = (await s.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["mcpgw://conf/test://template/{id}/data"]
        ref = types.PromptReference(type="ref/prompt", name="conf__test_prompt_with_arguments")
        done = await s.complete(ref, {"name": "arg1", "value": "a"})
        assert done.completion.values == []  # the conformance backend completes nothing, but answers
    async with sdk_session(stack, "/mcp", DEV, "legacy") as s:
        with pytest.raises(MCPError, match="Denied by gateway policy"):
            await s.complete(ref, {"name": "arg1", "value": "a"})
        assert (await s.list_resources()).resources == []  # developer has no read_resource grant
        with pytest.raises(MCPError, match="Denied by gateway policy"):
            await s.read_resource("mcpgw://conf/test://static-text")


async def test_tools_list_pages_with_opaque_cursors(stack: Stack) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, "modern") as s:
        first = await s.list_tools()
        assert len(first.tools) == 4 and first.next_cursor
        names = [t.name for t in first.tools]
        cursor = first.next_cursor
        while cursor:
            page = await s.list_tools(params=types.PaginatedRequestParams(cursor=cursor))
            names += [t.name for t in page.tools]
            cursor = page.next_cursor
        assert len(names) == len(set(names)) and "conf__test_simple_text" in names and "alpha__echo" in names
        with pytest.raises(MCPError, match="cursor"):
            await s.list_tools(params=types.PaginatedRequestParams(cursor="bm9wZQ"))


async def test_session_survives_a_replica_switch(stack: Stack, tmp_path: Path) -> None:
    def replica(secret: str):
        # Another gateway process in all but name: same registry, PDP and issuer, its own state.
        return create_app(load_gateway_settings(environ={
            "MCPGW_GATEWAY_ISSUER": stack.issuer.issuer, "MCPGW_GATEWAY_AUDIENCE": "mcpgw", "MCPGW_GATEWAY_ENVIRONMENT": "development",
            "MCPGW_GATEWAY_PDP_URL": stack.pdp_url, "MCPGW_GATEWAY_SERVERS_FILE": str(stack.settings.servers_file),
            "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_GATEWAY_MCP_SESSION_SECRET": secret,
        }, dotenv=None))

    runner_b, url_b = await start_site(replica("shared-secret"))
    runner_c, url_c = await start_site(replica("another-secret"))
    try:
        for path in ("/servers/alpha/mcp", "/mcp"):
            sid = await initialize(stack, path)  # created on replica A
            call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
                    "params": {"name": "echo" if path != "/mcp" else "alpha__echo", "arguments": {"text": "b"}}}
            other = dataclasses.replace(stack, url=url_b)
            status, answer, _ = await rpc(other, path, call, headers=session_headers(sid))
            assert status == 200 and answer["result"]["content"][0]["text"] == "b", answer
            foreign = dataclasses.replace(stack, url=url_c)
            status, _, _ = await rpc(foreign, path, call, headers=session_headers(sid))
            assert status == 404
    finally:
        await runner_b.cleanup()
        await runner_c.cleanup()


async def test_metrics_exposed(stack: Stack) -> None:
    await initialize(stack, "/mcp")
    status, text, _ = await stack.call("GET", "/metrics", subject=None)
    assert status == 200
    assert 'mcpgw_gateway_mcp_sessions_opened_total{endpoint="aggregated"} 1.0' in text
    assert 'mcpgw_gateway_mcp_messages_total{endpoint="aggregated",era="handshake",method="initialize"}' in text


async def test_unknown_method_in_a_session_is_not_a_lost_session(stack: Stack) -> None:
    """Handshake era: −32601 travels in a 200 — an HTTP 404 tells clients their session is gone."""
    sid = await initialize(stack, "/mcp")
    body = {"jsonrpc": "2.0", "id": 3, "method": "resources/frobnicate", "params": {"uri": "mcpgw://conf/x"}}
    status, answer, _ = await rpc(stack, "/mcp", body, headers=session_headers(sid))
    assert status == 200 and answer["error"]["code"] == -32601
