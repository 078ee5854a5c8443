"""Long-lived backend streams have a connection pool of their own (keys.STREAM_SESSION): agents holding
more standing streams than the request pool keeps leave tools/call free, and a stream past the
streams' cap is refused at once with a 503 naming the setting, while calls still succeed.

The request pool is shrunk to 2 connections per host and the streams' pool to 3 per host; a real SDK
backend (both eras) on loopback; passthrough agents each hold a 2025-era GET stream or a 2026-07-28
`subscriptions/listen`, which the gateway relays from a backend stream of its own. Before the
streams had a pool of their own, the third stream waited for a request connection (and so did
every call) until the backend's timeout."""
# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration import mcp_helpers as mh
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.pdp_helpers import eventually

PT = "/servers/sp/mcp"
STREAMS = 3  # the streams' pool per host, one more than the request pool's 2
SETTING = "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    import gateway.upstream

    # The request pool (and the control pool's share of nothing: it names its own limits) shrunk to 2.
    monkeypatch.setattr(gateway.upstream, "create_session",
                        functools.partial(gateway.upstream.create_session, limit=4, limit_per_host=2))
    backend = mcp_backend_factory("normal", "streampool", tools=("echo",))
    env = {SETTING: str(STREAMS)}
    async with gateway_stack(tmp_path, pg_dsn, {"sp": {"url": backend.url, "timeout": 10}}, env=env) as s:
        yield s


async def _call(stack: Stack) -> None:
    """A tools/call through the gateway answers (REST: the gateway's own backend client)."""
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=sp",
                                       json={"tool_name": "echo", "parameters": {"text": "still here"}})
    assert status == 200 and "still here" in str(body), body


async def _get_stream(stack: Stack) -> aiohttp.ClientResponse:
    """A passthrough session's 2025-era GET stream, open (the backend answered its headers)."""
    sid = await mh.initialize(stack, PT, mh.ADMIN)
    headers = {**stack.headers(mh.ADMIN), **mh.session_headers(sid), "Accept": "text/event-stream"}
    return await stack.session.get(stack.url + PT, headers=headers)


async def _listen(stack: Stack, n: int) -> aiohttp.ClientResponse:
    """A passthrough 2026-07-28 `subscriptions/listen` stream, acknowledged."""
    body = {"jsonrpc": "2.0", "id": f"listen-{n}", "method": "subscriptions/listen",
            "params": {"notifications": {"toolsListChanged": True}, "_meta": mh.META}}
    headers = {**stack.headers(mh.ADMIN), "Accept": mh.ACCEPT, **mh.modern_headers("subscriptions/listen")}
    return await stack.session.post(stack.url + PT, json=body, headers=headers)


async def _event(resp: aiohttp.ClientResponse) -> bytes:
    """The next SSE event's data line."""
    async for line in resp.content:
        if line.startswith(b"data:"):
            return line
    return b""


async def _reopened(streams: list[aiohttp.ClientResponse],
                    open_: Callable[[], Awaitable[aiohttp.ClientResponse]]) -> bool:
    """Open one more stream; kept in `streams` if it opened."""
    resp = await open_()
    if resp.status != 200:
        resp.close()
        return False
    streams.append(resp)
    return True


@contextlib.asynccontextmanager
async def _held(streams: list[aiohttp.ClientResponse]) -> AsyncIterator[list[aiohttp.ClientResponse]]:
    try:
        yield streams
    finally:
        for resp in streams:
            resp.close()


async def test_2025_get_streams_past_the_request_pool_leave_calls_free_and_the_next_is_refused(stack: Stack) -> None:
    async with _held([]) as streams, asyncio.timeout(60):  # a guard against a hang, not a measurement
        for _ in range(STREAMS):
            streams.append(await _get_stream(stack))
            assert streams[-1].status == 200 and streams[-1].content_type == "text/event-stream"
        await _call(stack)  # three streams held, more than the request pool keeps: calls still go
        refused = await _get_stream(stack)
        async with refused:
            assert refused.status == 503, await refused.text()
            assert SETTING in await refused.text()
        await _call(stack)
        streams.pop().close()  # one stream ends: once the gateway has closed its backend side, the next one opens
        await eventually(functools.partial(_reopened, streams, functools.partial(_get_stream, stack)),
                         within=10, interval=0.05)


async def test_2026_listen_streams_past_the_request_pool_leave_calls_free_and_the_next_is_refused(stack: Stack) -> None:
    async with _held([]) as streams, asyncio.timeout(60):
        for n in range(STREAMS):
            streams.append(await _listen(stack, n))
            assert streams[-1].status == 200, await streams[-1].text()
            assert b"acknowledged" in await _event(streams[-1])
        await _call(stack)
        async with await _listen(stack, STREAMS) as refused:
            text = await refused.text()
            assert refused.status == 503 and SETTING in text, (refused.status, text)
        await _call(stack)


@pytest.fixture
async def tight(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Stack, Backend]]:
    """The request pool keeps ONE connection per host: a follower stream on it would leave calls none."""
    import gateway.upstream

    monkeypatch.setattr(gateway.upstream, "create_session",
                        functools.partial(gateway.upstream.create_session, limit=4, limit_per_host=1))
    backend = mcp_backend_factory("normal", "followed", tools=("echo",))
    async with gateway_stack(tmp_path, pg_dsn, {"sp": {"url": backend.url, "timeout": 10}}) as s:
        yield s, backend


@pytest.mark.parametrize("era", ["2025", "2026"])
async def test_the_catalog_followers_stream_leaves_calls_the_request_pool(
        tight: tuple[Stack, Backend], era: str) -> None:
    """An agent's change stream on `/mcp` has the gateway follow each backend (a GET stream of its own
    session, or a `subscriptions/listen`: upstream/changes.py); that stream is not on the request pool."""
    stack, backend = tight
    backend.clear()
    if era == "2025":
        sid = await mh.initialize(stack, "/mcp", mh.ADMIN)
        headers = {**stack.headers(mh.ADMIN), **mh.session_headers(sid), "Accept": "text/event-stream"}
        agent = await stack.session.get(stack.url + "/mcp", headers=headers)
    else:
        body = {"jsonrpc": "2.0", "id": "l", "method": "subscriptions/listen",
                "params": {"notifications": {"toolsListChanged": True}, "_meta": mh.META}}
        headers = {**stack.headers(mh.ADMIN), "Accept": mh.ACCEPT, **mh.modern_headers("subscriptions/listen")}
        agent = await stack.session.post(stack.url + "/mcp", json=body, headers=headers)
    async with agent, asyncio.timeout(60):  # a hang guard
        assert agent.status == 200, await agent.text()

        async def followed() -> bool:  # the backend has the follower's stream request
            return any(r.method == "GET" or (r.json() or {}).get("method") == "subscriptions/listen"
                       for r in list(backend.requests))

        await eventually(followed, within=10)
        await _call(stack)


LANE = 2  # the subject's concurrent calls per backend (MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY)


@pytest.fixture
async def narrow(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[Stack]:
    backend = mcp_backend_factory("normal", "narrow", tools=("echo",))
    env = {"MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY": str(LANE), "MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE": "1",
           "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT": str(LANE + 1)}
    async with gateway_stack(tmp_path, pg_dsn, {"sp": {"url": backend.url, "timeout": 3}}, env=env) as s:
        yield s


async def test_passthrough_listens_past_the_subjects_lane_leave_its_calls_answered(narrow: Stack) -> None:
    """A standing `subscriptions/listen` holds no slot of its subject's call lane on the backend (it
    used to: a subject with as many listens as its lane had every passthrough call queue, then fail);
    it holds one of the subject's open streams instead (429 past MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT)."""
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "still here"}, "_meta": mh.META}}
    async with _held([]) as streams, asyncio.timeout(60):  # a hang guard
        for n in range(LANE + 1):
            streams.append(await _listen(narrow, n))
            assert streams[-1].status == 200, await streams[-1].text()
            assert b"acknowledged" in await _event(streams[-1])
        status, answer, _ = await mh.rpc(narrow, PT, call, headers=mh.modern_headers("tools/call", "echo"))
        assert status == 200 and "still here" in str(answer), answer
        async with await _listen(narrow, LANE + 1) as refused:
            text = await refused.text()
            assert refused.status == 429 and "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT" in text, (refused.status, text)
        streams.pop().close()  # one ends: once the gateway has let its slot go, a listen opens again
        await eventually(functools.partial(_reopened, streams, functools.partial(_listen, narrow, LANE + 2)),
                         within=10, interval=0.05)
