"""gateway/upstream/transports/bridge_sessions.py: the bridge's session table (bounds, idle expiry,
connections closed on eviction) and where a server's request goes (`BridgeSession.relay`)."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gateway.registry import parse_server
from gateway.upstream.transports.bridge_sessions import BridgeCall, SessionTable
from gateway.upstream.transports.legacy_sse import SseServer
from gateway.upstream.transports.mux import Multiplexer
from gateway.upstream.transports.stdio_process import StdioLimits


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _server(session: aiohttp.ClientSession, name: str = "old") -> SseServer:
    config, errors = parse_server(name, {"type": "sse", "url": "http://127.0.0.1:9/sse"})
    assert config is not None and not errors
    return SseServer(config, StdioLimits(), session, None)


async def test_own_connections_are_bounded_per_server_and_the_evicted_ones_closed() -> None:
    closed: list[Multiplexer] = []
    async with aiohttp.ClientSession() as http:
        table = SessionTable(2, 600.0, closed.append, Clock())
        old, other = _server(http), _server(http, "other")
        owns = [old.for_caller({"sampling": {}}) for _ in range(3)]
        first, second = table.add("old", owns[0]), table.add("old", owns[1])
        table.add("other", other.for_caller({}))
        table.add("old", None)  # a shared-connection session (stdio) holds no connection: not counted
        assert table.get(first) is not None  # now the most recently used of "old"
        third = table.add("old", owns[2])
        assert closed == [owns[1]] and table.get(second) is None, "the least recently used one ends"
        assert table.own("old") == 2 and table.own("other") == 1 and table.ended == 1
        assert table.get(first) is not None and table.get(third) is not None
        assert owns[2].capabilities == {"sampling": {}} and not owns[2].eager  # reconnects only when used


async def test_an_idle_session_ends_the_next_time_the_table_is_touched() -> None:
    closed: list[Multiplexer] = []
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        table = SessionTable(256, 600.0, closed.append, clock)
        own = _server(http).for_caller({})
        idle, busy = table.add("old", own), table.add("old", None)
        clock.now = 599.0
        assert table.get(busy) is not None
        clock.now = 600.5
        assert table.get(busy) is not None and table.get(idle) is None
        assert closed == [own] and table.own("old") == 0 and len(table) == 1


async def test_delete_and_a_reconfigured_server_end_their_sessions() -> None:
    closed: list[Multiplexer] = []
    async with aiohttp.ClientSession() as http:
        table = SessionTable(256, 600.0, closed.append, Clock())
        owns = [_server(http).for_caller({}) for _ in range(2)]
        first = table.add("old", owns[0])
        table.add("old", owns[1])
        kept = table.add("other", None)
        assert table.pop(first) is not None and table.pop(first) is None
        table.drop_server("old")
        assert closed == owns and table.ended == 0 and table.get(kept) is not None


async def _never() -> dict[str, Any]:
    await asyncio.Event().wait()
    return {}


async def test_a_server_request_goes_to_the_oldest_running_call_then_to_get_streams() -> None:
    async with aiohttp.ClientSession() as http:
        table = SessionTable(256, 600.0, lambda _: None, Clock())
        own = _server(http).for_caller({"elicitation": {}})
        session = table.get(table.add("old", own))
        assert session is not None and own.relay == session.relay
        request = {"jsonrpc": "2.0", "id": 7, "method": "elicitation/create", "params": {}}
        assert session.relay(request) is False  # nobody to ask: the connection answers it itself
        heard: list[dict[str, Any]] = []
        own.listeners.add(heard.append)
        assert session.relay(request) is True and heard == [request]
        finished = asyncio.create_task(_never())
        finished.cancel()
        older, newer = asyncio.Queue[dict[str, Any]](maxsize=1), asyncio.Queue[dict[str, Any]]()
        tasks = [asyncio.create_task(_never()) for _ in range(2)]
        session.calls.update({0: BridgeCall(finished, asyncio.Queue()), 1: BridgeCall(tasks[0], older),
                              2: BridgeCall(tasks[1], newer)})
        await asyncio.sleep(0)  # the cancelled task is done
        assert session.relay(request) and older.get_nowait() == request  # the done call is passed over
        older.put_nowait({})
        assert session.relay(request) and newer.get_nowait() == request  # a full stream is passed over
        assert heard == [request]
        session.end()
        await asyncio.gather(*tasks, return_exceptions=True)
        assert all(t.cancelled() for t in tasks)
