"""`/mcp` aggregates prompts and resources list changes, on the 2025 GET stream and on 2026-07-28
`subscriptions/listen`, from a real SDK backend whose prompt/resource lists grow."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.backends import mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    session_headers,
)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Any, monkeypatch: pytest.MonkeyPatch,
                ) -> AsyncIterator[Stack]:
    from gateway.mcp import listen

    monkeypatch.setattr(listen, "POLL_SECONDS", 0.1)
    backend = mcp_backend_factory("normal", "growing2", tools=("echo", "grow_prompt", "grow_resource"))
    async with gateway_stack(tmp_path, pg_dsn, {"gr": {"url": backend.url}}) as s:
        yield s


async def _post(stack: Stack, body: dict[str, Any], headers: dict[str, str]) -> Any:
    hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json", **headers}
    return await stack.session.post(stack.url + "/mcp", json=body, headers=hdrs)


async def _events(resp: Any, until: str) -> list[str]:
    """Methods of the stream's messages up to and including `until`."""
    seen: list[str] = []
    async with asyncio.timeout(10):
        async for line in resp.content:
            if line.startswith(b"data:"):
                seen.append(json.loads(line[5:]).get("method"))
                if seen[-1] == until:
                    return seen
    raise AssertionError(f"stream ended before {until}: {seen}")


async def _grow(stack: Stack, headers: dict[str, str], tool: str, name: str,
                extra: dict[str, Any] | None = None) -> None:
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": f"gr__{tool}", "arguments": {"name": name}, **(extra or {})}}
    async with await _post(stack, body, headers) as resp:
        assert resp.status == 200
        assert "added" in await resp.text()


async def test_initialize_advertises_list_changed_for_prompts_and_resources(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    async with await _post(stack, body, {}) as resp:
        caps = (await resp.json())["result"]["capabilities"]
    assert caps["prompts"] == {"listChanged": True}
    assert caps["resources"] == {"listChanged": True, "subscribe": True}


async def test_get_stream_carries_prompts_and_resources_list_changed(stack: Stack) -> None:
    sid = await initialize(stack, "/mcp")
    hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
    async with stack.session.get(stack.url + "/mcp", headers=hdrs) as stream:
        assert stream.status == 200
        await asyncio.sleep(0.3)  # the watcher has taken its first snapshot
        await _grow(stack, session_headers(sid), "grow_prompt", "p_one")
        seen = await _events(stream, "notifications/prompts/list_changed")
        await _grow(stack, session_headers(sid), "grow_resource", "r_one")
        seen += await _events(stream, "notifications/resources/list_changed")
    # Only the kind that changed is announced each time.
    assert seen == ["notifications/prompts/list_changed", "notifications/resources/list_changed"]


async def test_listen_acknowledges_prompts_and_resources_and_sends_only_those(stack: Stack) -> None:
    wanted = {"promptsListChanged": True, "resourcesListChanged": True, "resourceSubscriptions": ["x://y"]}
    body = {"jsonrpc": "2.0", "id": "sub-2", "method": "subscriptions/listen",
            "params": {"notifications": wanted, "_meta": META}}
    async with await _post(stack, body, modern_headers("subscriptions/listen")) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        assert await _events(stream, "notifications/subscriptions/acknowledged")
        await asyncio.sleep(0.3)
        await _grow(stack, modern_headers("tools/call", "gr__grow_resource"), "grow_resource", "r_two",
                    {"_meta": META})
        lines: list[dict[str, Any]] = []
        async with asyncio.timeout(10):
            async for line in stream.content:
                if line.startswith(b"data:"):
                    lines.append(json.loads(line[5:]))
                    break
    assert lines[0]["method"] == "notifications/resources/list_changed"
    assert lines[0]["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-2"


async def test_listen_ack_lists_only_honoured_kinds(stack: Stack) -> None:
    wanted = {"promptsListChanged": True, "resourcesListChanged": True, "resourceSubscriptions": ["x://y"]}
    body = {"jsonrpc": "2.0", "id": "sub-3", "method": "subscriptions/listen",
            "params": {"notifications": wanted, "_meta": META}}
    async with await _post(stack, body, modern_headers("subscriptions/listen")) as stream:
        async with asyncio.timeout(10):
            async for line in stream.content:
                if line.startswith(b"data:"):
                    ack = json.loads(line[5:])
                    break
    # resources/updated subscriptions are not aggregated (docs/mcp.md): left out of the ack.
    assert ack["params"]["notifications"] == {"promptsListChanged": True, "resourcesListChanged": True}
