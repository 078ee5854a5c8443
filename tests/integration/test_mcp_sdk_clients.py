"""The official `mcp` SDK client (2.x), both modes, through `/mcp` and `/servers/{name}/mcp`."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.keys import AUDIT
from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend,
    mcp_backend_factory,
    mcp_backend_json,
)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import sdk_session

ADMIN, DEV = "admin@example.com", "dev@example.com"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "beta": {"url": mcp_backend_json.url}},
        env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"},
    ) as s:
        yield s


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_aggregated_lists_and_calls_per_role(stack: Stack, mode: str) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, mode) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"alpha__echo", "beta__echo", "alpha__add", "beta__weather"} <= names
        assert "alpha__delete_records" not in names  # the deny rule holds for admins too
        assert "echo" in names  # offered by both: the broadcast tool
        result = await s.call_tool("alpha__add", {"a": 2, "b": 3})
        assert not result.is_error and result.content[0].text == "5"
        both = await s.call_tool("echo", {"text": "hi"})
        assert not both.is_error and "succeeded on 2/2 servers" in both.content[0].text
        assert set(both.structured_content) == {"alpha", "beta"}
    async with sdk_session(stack, "/mcp", DEV, mode) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert "beta__echo" in names and "alpha__add" in names
        assert "beta__add" not in names and "alpha__delete_records" not in names
        denied = await s.call_tool("beta__add", {"a": 1, "b": 1})
        assert denied.is_error and "Denied by gateway policy" in denied.content[0].text


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_passthrough_lists_and_calls_per_role(stack: Stack, mode: str) -> None:
    async with sdk_session(stack, "/servers/beta/mcp", ADMIN, mode) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        assert {"echo", "add", "weather"} <= names
        weather = await s.call_tool("weather", {"city": "Oslo"})
        assert not weather.is_error and weather.structured_content["city"] == "Oslo"
    async with sdk_session(stack, "/servers/beta/mcp", DEV, mode) as s:
        assert [t.name for t in (await s.list_tools()).tools] == ["echo"]
        denied = await s.call_tool("add", {"a": 1, "b": 1})
        assert denied.is_error and "Denied by gateway policy" in denied.content[0].text


async def test_progress_notifications_relayed(stack: Stack) -> None:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    async with sdk_session(stack, "/servers/alpha/mcp", ADMIN, "legacy") as s:
        result = await s.call_tool("progress", {"steps": 3}, progress_callback=on_progress)
        assert not result.is_error
    assert len(seen) >= 2


async def test_tool_calls_are_audited(stack: Stack) -> None:
    async with sdk_session(stack, "/mcp", DEV, "legacy") as s:
        await s.call_tool("alpha__echo", {"text": "audited"})
        await s.call_tool("beta__add", {"a": 1, "b": 2})
    await stack.app[AUDIT].flush()
    events = [json.loads(line) for line in stack.audit_file.read_text().splitlines()]
    calls = [e for e in events if e.get("action") == "invoke_tool"]
    by_tool = {(e.get("mcp_server"), e.get("tool_name")): e for e in calls}
    assert by_tool[("alpha", "echo")]["policy_decision"] == "allow"
    denied = by_tool[("beta", "add")]
    assert denied["policy_decision"] == "deny" and denied["event_type"] == "policy_violation"
    assert "Bearer" not in stack.audit_file.read_text()
