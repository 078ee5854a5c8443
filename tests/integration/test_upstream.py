"""UpstreamPool against real SDK backends: both eras, sessions, SSE/JSON, failures, header hygiene."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from gateway.credentials import CredentialStore
from gateway.registry import Registry, ServerConfig, parse_servers
from gateway.upstream import (
    LEGACY,
    MODERN,
    UpstreamError,
    UpstreamPool,
    UpstreamRpcError,
    UpstreamTimeout,
    codec,
    create_session,
)
from tests.fixtures.backends import (  # noqa: F401
    Backend,
    fresh_mcp_backend,
    mcp_backend,
    mcp_backend_500,
    mcp_backend_error,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_legacy,
    mcp_backend_slow,
)


def config(url: str, name: str = "srv", **extra: object) -> ServerConfig:
    servers, errors = parse_servers({"servers": {name: {"url": url, "timeout": 10, **extra}}})
    assert errors == []
    return servers[name]


@pytest.fixture
async def pool() -> AsyncIterator[UpstreamPool]:
    async with create_session() as session:
        yield UpstreamPool(session, CredentialStore(session, environ={}))


@pytest.mark.parametrize(
    ("which", "era"),
    [("mcp_backend", MODERN), ("mcp_backend_json", MODERN), ("mcp_backend_legacy", LEGACY)],
)
async def test_list_and_call_same_shape_in_both_eras(
    request: pytest.FixtureRequest, pool: UpstreamPool, which: str, era: str
) -> None:
    backend: Backend = request.getfixturevalue(which)
    srv = config(backend.url)
    tools = await pool.list_tools(srv)
    assert {"echo", "add", "get_headers", "delete_records", "weather"} <= {t["name"] for t in tools}
    assert pool.era(srv) == era
    assert await pool.call_tool(srv, "add", {"a": 2, "b": 40}) == {
        "content": [{"type": "text", "text": "42"}],
        "structuredContent": {"result": 42},
        "isError": False,
    }
    weather = await pool.call_tool(srv, "weather", {"city": "Oslo"})
    assert weather["structuredContent"] == {"city": "Oslo", "temperature_c": 21.5, "conditions": "sunny"}
    assert "resultType" not in weather


async def test_modern_era_is_remembered_and_stateless(pool: UpstreamPool, fresh_mcp_backend: Backend) -> None:
    srv = config(fresh_mcp_backend.url)
    await pool.list_tools(srv)
    await pool.call_tool(srv, "echo", {"text": "a"})
    await pool.call_tool(srv, "echo", {"text": "b"})
    assert fresh_mcp_backend.methods() == ["server/discover", "tools/list", "tools/call", "tools/call"]
    call = fresh_mcp_backend.requests[-1]
    assert call.headers["mcp-protocol-version"] == "2026-07-28"
    assert (call.headers["mcp-method"], call.headers["mcp-name"]) == ("tools/call", "echo")
    assert "mcp-session-id" not in call.headers
    meta = call.json()["params"]["_meta"]
    assert meta[codec.META_VERSION] == "2026-07-28" and codec.META_CAPABILITIES in meta


async def test_legacy_handshake_once_then_session_reused(
    pool: UpstreamPool, mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("legacy", "legacy-private")
    srv = config(backend.url)
    await asyncio.gather(*(pool.call_tool(srv, "echo", {"text": str(i)}) for i in range(10)))
    await pool.list_tools(srv)
    methods = backend.methods()
    assert methods[:3] == ["server/discover", "initialize", "notifications/initialized"]
    assert methods.count("initialize") == 1 and methods.count("server/discover") == 1
    assert pool.client(srv).initialize_count == 1
    session_ids = {r.headers.get("mcp-session-id") for r in backend.requests[3:]}
    assert session_ids == {pool.client(srv).session_id} and None not in session_ids
    assert {r.headers["mcp-protocol-version"] for r in backend.requests[2:]} == {"2025-11-25"}


async def test_reinitialize_when_backend_forgets_session(
    pool: UpstreamPool, mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("legacy", "legacy-forgetful")
    srv = config(backend.url)
    await pool.call_tool(srv, "echo", {"text": "1"})
    old = pool.client(srv).session_id
    assert old
    # The backend drops the session (as after a restart or idle expiry): it now answers 404.
    async with aiohttp.ClientSession() as s:
        async with s.delete(backend.url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-11-25"}) as r:
            assert r.status in (200, 204)
    result = await pool.call_tool(srv, "echo", {"text": "2"})
    assert result["content"][0]["text"] == "2"
    assert pool.client(srv).initialize_count == 2
    assert pool.client(srv).session_id not in (None, old)
    assert backend.methods().count("initialize") == 2


@pytest.mark.parametrize("which", ["mcp_backend", "mcp_backend_legacy"])
async def test_sse_notifications_before_response_are_collected(
    request: pytest.FixtureRequest, pool: UpstreamPool, which: str
) -> None:
    backend: Backend = request.getfixturevalue(which)
    params = {"name": "progress", "arguments": {"steps": 3}, "_meta": {"progressToken": "p"}}
    reply = await pool.exchange(config(backend.url), "tools/call", params)
    assert reply.response["result"]["content"][0]["text"] == "done 3"
    assert [n["params"]["progress"] for n in reply.notifications] == [1, 2, 3]
    assert {n["method"] for n in reply.notifications} == {"notifications/progress"}


async def test_pagination_cursors_followed(pool: UpstreamPool, mcp_backend_factory: Callable[..., Backend]) -> None:
    backend = mcp_backend_factory("paged", "paged")
    tools = await pool.list_tools(config(backend.url))
    assert [t["name"] for t in tools] == [f"p{i}" for i in range(7)]
    assert backend.methods().count("tools/list") == 3


async def test_tool_error_is_a_result(pool: UpstreamPool, mcp_backend_error: Backend) -> None:
    result = await pool.call_tool(config(mcp_backend_error.url), "fail", {"message": "kaput"})
    assert result["isError"] is True
    assert "kaput" in result["content"][0]["text"]


async def test_unknown_method_is_rpc_error(pool: UpstreamPool, mcp_backend: Backend) -> None:
    response = await pool.request(config(mcp_backend.url), "nope/method", {})
    assert response["error"]["code"] == -32601
    with pytest.raises(UpstreamRpcError) as info:
        await pool._result(config(mcp_backend.url), "nope/method", {})
    assert info.value.code == -32601 and info.value.http_status == 502


async def test_http_500_is_upstream_error(pool: UpstreamPool, mcp_backend_500: Backend) -> None:
    with pytest.raises(UpstreamError) as info:
        await pool.call_tool(config(mcp_backend_500.url, "broken"), "echo", {"text": "x"})
    assert (info.value.status, info.value.server, info.value.http_status) == (500, "broken", 502)
    assert pool.era(config(mcp_backend_500.url, "broken")) is None  # a 500 is no era verdict


async def test_slow_backend_times_out(pool: UpstreamPool, mcp_backend_slow: Backend) -> None:
    srv = config(mcp_backend_slow.url, "slow", timeout=0.2)
    with pytest.raises(UpstreamTimeout) as info:
        await pool.call_tool(srv, "echo", {"text": "x"})
    assert info.value.http_status == 504 and "0.2" in str(info.value)


async def test_unreachable_backend(pool: UpstreamPool) -> None:
    with pytest.raises(UpstreamError, match="cannot reach backend"):
        await pool.list_tools(config("http://127.0.0.1:9/mcp", "gone"))


async def test_agent_headers_never_forwarded(pool: UpstreamPool, fresh_mcp_backend: Backend) -> None:
    srv = config(fresh_mcp_backend.url)
    message = {"jsonrpc": "2.0", "id": 77, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "s"}}}
    agent = {"Authorization": "Bearer agent-token", "Cookie": "sid=1", "Host": "evil.example", "Last-Event-ID": "5"}
    async with await pool.open_stream(srv, message, agent) as resp:
        assert resp.status == 200
        body = codec.decode(await resp.read())
    assert body["id"] == 77 and body["result"]["content"][0]["text"] == "s"
    for r in fresh_mcp_backend.requests:
        assert "authorization" not in r.headers and "cookie" not in r.headers
        assert r.headers["host"] == fresh_mcp_backend.url.split("/")[2]
    assert fresh_mcp_backend.requests[-1].headers["last-event-id"] == "5"


async def test_pool_resolves_names_through_registry(tmp_path, mcp_backend: Backend) -> None:
    path = tmp_path / "servers.yaml"
    path.write_text(f"servers:\n  one:\n    url: {mcp_backend.url}\n  disabled:\n    url: {mcp_backend.url}\n    enabled: false\n")
    registry = Registry(path)
    registry.load()
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}), registry)
        assert (await pool.call_tool("one", "echo", {"text": "hi"}))["content"][0]["text"] == "hi"
        for name in ("disabled", "missing"):
            with pytest.raises(UpstreamError, match="no such enabled backend"):
                await pool.call_tool(name, "echo", {"text": "hi"})
