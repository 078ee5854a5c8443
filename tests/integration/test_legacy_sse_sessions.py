"""A legacy HTTP+SSE backend gives each caller a connection (an MCP session) of its own, declaring
the capabilities its agent declared, ended with the caller's session: `@modelcontextprotocol/
server-everything` in SSE mode, which logs every stream it accepts and loses ("Client Connected: id",
"Client Disconnected: id"). Sampling and elicitation relayed over such connections are covered by
the client matrix (the everysse rows, /mcp and passthrough)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import BRIDGE
from tests.conformance import runner
from tests.fixtures import matrix_servers as ms
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ADMIN, initialize, rpc, session_headers
from tests.integration.pdp_helpers import eventually

pytestmark = pytest.mark.skipif(not ms.node_tools_installed() and not runner.REQUIRED,
                                reason="Node tools not installed (make tools)")
SAMPLING_TOOL = "old__trigger-sampling-request"


class Everything:
    """server-everything in SSE mode with its stderr (its connection log) in a file."""

    def __init__(self, tmp: Path) -> None:
        self.log = tmp / "everything-sse.stderr"
        self.server = ms.everything(tmp, "sse", stderr=self.log)

    def ids(self, what: str) -> list[str]:
        """Backend session ids by `Connected` / `Disconnected`, in order."""
        return re.findall(rf"Client {what}:\s+(\S+)", self.log.read_text(errors="replace"))


@pytest.fixture
def everything(tmp_path: Path) -> Iterator[Everything]:
    peer = Everything(tmp_path)
    peer.server.start()
    try:
        yield peer
    finally:
        peer.server.stop()


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, everything: Everything) -> AsyncIterator[Stack]:
    env = {"MCPGW_GATEWAY_UPSTREAM_SESSIONS_PER_BACKEND": "1"}
    async with gateway_stack(tmp_path, pg_dsn, {"old": {"type": "sse", "url": everything.server.url}}, env=env) as s:
        await s.app[BRIDGE].settled()  # the start-up check's connection has come and gone
        yield s


async def _tools(stack: Stack, sid: str) -> set[str]:
    status, answer, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200, answer
    return {t["name"] for t in answer["result"]["tools"]}


async def test_each_caller_has_its_own_connection_declaring_its_capabilities_and_eviction_closes_it(
    stack: Stack, everything: Everything
) -> None:
    since = everything.server.record.mark()
    asking = await initialize(stack, "/mcp", ADMIN, capabilities={"sampling": {}, "elicitation": {}})
    before = everything.ids("Connected")
    assert SAMPLING_TOOL in await _tools(stack, asking)  # offered only to a session that declared sampling
    mine = [i for i in everything.ids("Connected") if i not in before]
    assert mine, everything.log.read_text()
    declared = [m["params"]["capabilities"] for m in everything.server.record.messages(since)
                if m.get("method") == "initialize"]
    assert {"elicitation": {}, "sampling": {}} in declared, declared

    plain = await initialize(stack, "/mcp", ADMIN)
    assert SAMPLING_TOOL not in await _tools(stack, plain)  # another caller, another backend session
    # One per-subject session per backend (the setting): the first caller's is ended, its stream closed.
    await eventually(lambda: _async(set(mine) <= set(everything.ids("Disconnected"))), within=10)
    assert SAMPLING_TOOL in await _tools(stack, asking)  # and comes back, in a new connection, when used


async def test_a_passthrough_agent_has_its_own_connection_until_it_deletes_its_session(
    stack: Stack, everything: Everything
) -> None:
    path = "/servers/old/mcp"
    before = everything.ids("Connected")
    sid = await initialize(stack, path, ADMIN, capabilities={"elicitation": {}})
    status, answer, _ = await rpc(stack, path, {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200 and "trigger-elicitation-request" in {t["name"] for t in answer["result"]["tools"]}
    mine = [i for i in everything.ids("Connected") if i not in before]
    assert len(mine) == 1, everything.log.read_text()
    status, _, _ = await stack.call("DELETE", path, headers={**stack.headers(ADMIN), **session_headers(sid)})
    assert status == 200
    await eventually(lambda: _async(mine[0] in everything.ids("Disconnected")), within=10)


async def _async(value: bool) -> bool:
    return value


async def test_own_connections_are_capped_per_server_and_later_callers_share_the_servers_connection(
    tmp_path: Path, pg_dsn: str, everything: Everything
) -> None:
    """Each own connection holds a pooled connection for its stream: past the cap (well below the
    pool's per-host limit) a caller shares the server's one connection instead of starving the pool."""
    env = {"MCPGW_GATEWAY_UPSTREAM_OWN_CONNECTIONS_PER_SERVER": "2"}
    async with gateway_stack(tmp_path, pg_dsn, {"old": {"type": "sse", "url": everything.server.url}}, env=env) as s:
        bridge = s.app[BRIDGE]
        await bridge.settled()
        url = bridge.url_for("old")
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {"sampling": {}},
            "clientInfo": {"name": "t", "version": "1"}}}
        sids = []
        for _ in range(4):
            async with s.session.post(url, json=init) as resp:
                assert resp.status == 200, await resp.text()
                sids.append(resp.headers["Mcp-Session-Id"])
        assert bridge.sessions.own("old") == 2 and len(bridge.sessions) == 4
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        async with s.session.post(url, json=listing, headers={"Mcp-Session-Id": sids[-1]}) as resp:
            assert resp.status == 200 and (await resp.json())["result"]["tools"]


async def test_a_bridged_call_outlives_the_servers_idle_timeout_while_the_agent_answers(
    tmp_path: Path, pg_dsn: str, everything: Everything
) -> None:
    """server-everything waits, silent, for the agent's sampling answer: neither the gateway's idle read
    limit (the server's `timeout`) nor the bridge's timer may end the call meanwhile."""
    import httpx2
    import mcp_types as types
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client

    async def slow_sampler(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        await asyncio.sleep(2.5)  # five of the server's idle limits
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(type="text", text="late"))

    servers = {"old": {"type": "sse", "url": everything.server.url, "timeout": 0.5}}
    async with gateway_stack(tmp_path, pg_dsn, servers) as s:
        await s.app[BRIDGE].settled()
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {s.token(ADMIN)}"})
        client = Client(streamable_http_client(s.url + "/mcp", http_client=http), mode="legacy",
                        sampling_callback=slow_sampler)
        async with http, client:
            result = await client.call_tool(SAMPLING_TOOL, {"prompt": "slow", "maxTokens": 5})
        assert not result.is_error, result
        assert "late" in str(result.content), result


async def test_event_streams_take_the_streams_pool_and_past_it_a_caller_shares_or_is_refused_at_once(
    tmp_path: Path, pg_dsn: str, everything: Everything, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every event stream (own or shared) holds a connection of the streams' pool, not the request
    pool: two streams to a host whose request pool keeps 2 leave the endpoint POSTs free. With the
    streams' pool full, a caller whose own connection cannot open shares its server's open one, and
    one whose server has none open is refused at once (503 naming the setting); calls go on."""
    import functools

    import gateway.upstream

    monkeypatch.setattr(gateway.upstream, "create_session",
                        functools.partial(gateway.upstream.create_session, limit=8, limit_per_host=2))
    env = {"MCPGW_GATEWAY_UPSTREAM_OWN_CONNECTIONS_PER_SERVER": "1",
           "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST": "2"}
    servers = {name: {"type": "sse", "url": everything.server.url, "timeout": 10} for name in ("old", "twin")}
    async with gateway_stack(tmp_path, pg_dsn, servers, env=env) as s, asyncio.timeout(60):  # a hang guard
        bridge = s.app[BRIDGE]
        await bridge.settled()
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}

        async def start(name: str) -> tuple[int, str, str]:
            async with s.session.post(bridge.url_for(name), json=init) as resp:
                return resp.status, resp.headers.get("Mcp-Session-Id", ""), await resp.text()

        async def listed(name: str, sid: str) -> bool:
            listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            async with s.session.post(bridge.url_for(name), json=listing, headers={"Mcp-Session-Id": sid}) as resp:
                return resp.status == 200 and bool((await resp.json())["result"]["tools"])

        status, first, text = await start("twin")  # its own connection: stream 1
        assert status == 200, text
        status, second, text = await start("twin")  # past the own cap: twin's shared connection, stream 2
        assert status == 200, text
        assert await listed("twin", first) and await listed("twin", second)  # both streams held: calls go on
        async with s.session.delete(bridge.url_for("twin"), headers={"Mcp-Session-Id": first}) as resp:
            assert resp.status == 200
        await bridge.settled()  # its own connection closed: stream 1 is free
        status, _, text = await start("old")  # old's own connection takes it: the pool is full again
        assert status == 200, text
        status, third, text = await start("twin")  # no stream free for an own one: shares twin's open one
        assert status == 200, text
        assert await listed("twin", third)
        status, _, text = await start("old")  # past old's own cap, and old's shared one cannot open
        assert status == 503 and "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST" in text, (status, text)
        # A passthrough agent's initialize meets the same refusal: the reason reaches it.
        status, answer, _ = await rpc(s, "/servers/old/mcp", {**init, "params": {**init["params"],
                                                                                 "protocolVersion": "2025-11-25"}})
        assert status >= 500 and "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST" in str(answer), (status, answer)
        assert await listed("twin", second)
