"""Open change streams on `/mcp` cost the backends nothing extra: one shared poll per backend and
advertised kind (not one per stream), and streams are bounded per session and per subject."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import pytest

from gateway.keys import MCP_STATE
from gateway.mcp import listen
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    session_headers,
)
from tests.integration.pdp_helpers import eventually

SESSION_LIMIT = "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SESSION"
SUBJECT_LIMIT = "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT"


@contextlib.asynccontextmanager
async def listening(stack: Stack, n: int) -> AsyncIterator[list[aiohttp.ClientResponse]]:
    """`n` open 2026-07-28 `subscriptions/listen` streams for tools list changes."""
    streams: list[aiohttp.ClientResponse] = []
    try:
        for i in range(n):
            body = {"jsonrpc": "2.0", "id": f"l{i}", "method": "subscriptions/listen",
                    "params": {"notifications": {"toolsListChanged": True}, "_meta": META}}
            hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, **modern_headers("subscriptions/listen")}
            resp = await stack.session.post(stack.url + "/mcp", json=body, headers=hdrs)
            assert resp.status == 200, await resp.text()
            await resp.content.readline()  # the acknowledgement: the stream is being watched
            streams.append(resp)
        yield streams
    finally:
        for resp in streams:
            resp.close()


async def test_many_streams_share_one_poll_per_backend_and_advertised_kind(
    tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listen, "POLL_SECONDS", 0.05)
    backend = mcp_backend_factory("paged", "paged-poll")  # advertises tools only; 7 tools in 3 pages
    async with gateway_stack(tmp_path, pg_dsn, {"pg": {"url": backend.url}}) as stack:
        poller = stack.app[MCP_STATE].catalogs
        backend.clear()
        async with listening(stack, 20):
            start = poller.rounds

            async def polled_a_few() -> bool:
                return poller.rounds >= start + 5

            await eventually(polled_a_few)

        async def all_left() -> bool:
            return poller.subscribers == 0

        await eventually(all_left)
        rounds = poller.rounds
        methods = [(r.json() or {}).get("method") for r in list(backend.requests) if r.method == "POST"]
        # 20 streams, yet each round read the tools list once (3 pages) and nothing it does not offer.
        assert methods.count("tools/list") <= 3 * rounds
        assert "prompts/list" not in methods and "resources/list" not in methods
        assert poller.polls == rounds  # one advertised kind of one backend per round


async def test_streams_are_bounded_per_session_and_per_subject(
    tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("paged", "paged-limits")
    env = {SESSION_LIMIT: "2", SUBJECT_LIMIT: "3"}
    async with gateway_stack(tmp_path, pg_dsn, {"pg": {"url": backend.url}}, env=env) as stack:
        state = stack.app[MCP_STATE]
        sid = await initialize(stack, "/mcp")
        hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
        first = await stack.session.get(stack.url + "/mcp", headers=hdrs)
        second = await stack.session.get(stack.url + "/mcp", headers=hdrs)
        assert first.status == second.status == 200
        async with stack.session.get(stack.url + "/mcp", headers=hdrs) as third:
            body = await third.json()
            assert third.status == 429 and SESSION_LIMIT in body["error"]["message"], body
        # Another session of the same subject: one more fits under the subject's limit of 3, then no more.
        other = await initialize(stack, "/mcp")
        other_hdrs = {**hdrs, **session_headers(other)}
        fourth = await stack.session.get(stack.url + "/mcp", headers=other_hdrs)
        assert fourth.status == 200
        async with stack.session.get(stack.url + "/mcp", headers=other_hdrs) as fifth:
            assert fifth.status == 429 and SUBJECT_LIMIT in (await fifth.json())["error"]["message"]
        first.close()

        async def released() -> bool:
            return state.streams.subjects.held(ADMIN) == 2

        await eventually(released)
        again = await stack.session.get(stack.url + "/mcp", headers=hdrs)
        assert again.status == 200
        for resp in (second, fourth, again):
            resp.close()

        async def all_released() -> bool:
            return len(state.streams.subjects) == 0 and len(state.streams.sessions) == 0

        await eventually(all_released)


async def test_passthrough_get_streams_are_bounded_too(
    tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("legacy", "legacy-streams")
    async with gateway_stack(tmp_path, pg_dsn, {"lg": {"url": backend.url}}, env={SESSION_LIMIT: "1"}) as stack:
        state = stack.app[MCP_STATE]
        sid = await initialize(stack, "/servers/lg/mcp")
        hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
        first = await stack.session.get(stack.url + "/servers/lg/mcp", headers=hdrs)
        assert first.status == 200
        async with stack.session.get(stack.url + "/servers/lg/mcp", headers=hdrs) as second:
            assert second.status == 429 and SESSION_LIMIT in (await second.json())["error"]["message"]
        first.close()

        async def released() -> bool:
            return len(state.streams.subjects) == 0

        await eventually(released)
