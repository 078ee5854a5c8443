"""gateway.upstream.connections: idle keep-alive connections are closed before common servers close
them; the streams' pool refuses rather than queues, and the sender puts streams there, calls elsewhere."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from gateway.registry import parse_servers
from gateway.upstream import create_session
from gateway.upstream.connections import (
    IDLE_KEEPALIVE,
    KEEPALIVE_IDLE,
    KEEPALIVE_INTERVAL,
    KEEPALIVE_PROBES,
    PoolFull,
)
from gateway.upstream.errors import StreamsExhausted
from gateway.upstream.sender import Sender

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class KeepAliveServer(asyncio.Protocol):
    """Answers every request and never closes a connection itself (as a server with a long keep-alive)."""

    def __init__(self, closed: asyncio.Event) -> None:
        self.closed = closed

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if data.endswith(b"\r\n\r\n"):
            self.transport.write(RESPONSE)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


def test_idle_connections_are_dropped_before_the_usual_five_second_server_limit() -> None:
    assert 0 < IDLE_KEEPALIVE < 5.0


async def test_an_idle_connection_is_closed_by_the_gateway_after_its_keepalive() -> None:
    closed = asyncio.Event()
    server = await asyncio.get_running_loop().create_server(lambda: KeepAliveServer(closed), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with create_session(keepalive=0.2) as session:
            async with session.get(f"http://127.0.0.1:{port}/") as resp:
                assert resp.status == 200
                await resp.read()
            await asyncio.wait_for(closed.wait(), 5)  # closed by the client while the session lives
    finally:
        server.close()


@pytest.fixture
async def streaming(aiohttp_server: Any) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """A loopback server whose GET is an event stream left open until `release`; POST answers at once."""
    release = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b": open\n\n")
        await release.wait()
        return resp

    async def answer(request: web.Request) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    app = web.Application()
    app.router.add_get("/mcp", stream)
    app.router.add_post("/mcp", answer)
    server = await aiohttp_server(app)
    yield str(server.make_url("/mcp")), release
    release.set()


async def test_a_session_that_does_not_queue_refuses_past_its_limit_and_recovers(
        streaming: tuple[str, asyncio.Event]) -> None:
    url, _ = streaming
    async with create_session(limit=4, limit_per_host=1, queue=False) as streams:
        first = await streams.get(url)
        with pytest.raises(PoolFull) as refused:
            async with asyncio.timeout(10):  # a guard against a hang, not a measurement: it fails at once
                await streams.get(url)
        assert (refused.value.limit, refused.value.per_host) == (4, 1)
        first.close()  # the stream ends: its connection is free again
        async with streams.get(url) as again:
            assert again.status == 200


async def test_streams_take_the_streams_pool_and_calls_the_request_pool(streaming: tuple[str, asyncio.Event]) -> None:
    url, _ = streaming
    parsed, errors = parse_servers({"servers": {"b": {"url": url, "timeout": 30}}})
    assert errors == []
    async with create_session(limit=1, limit_per_host=1) as requests, \
            create_session(limit=1, limit_per_host=1, queue=False) as streams:
        sender = Sender(parsed["b"], requests, None, streams=streams)
        held = await sender.send("GET", {"Accept": "text/event-stream"}, stream=True)
        # A call still finds its pool free while the stream is open...
        async with await sender.send("POST", {}, {"jsonrpc": "2.0", "id": 1, "method": "ping"}) as call:
            assert call.status == 200
        # ...and one stream more is refused at once, naming the settings to raise.
        with pytest.raises(StreamsExhausted) as refused:
            async with asyncio.timeout(10):  # a hang guard: without a pool of its own this would queue
                await sender.send("GET", {"Accept": "text/event-stream"}, stream=True)
        assert refused.value.http_status == 503
        assert "MCPGW_GATEWAY_UPSTREAM_STREAM_CONNECTIONS_PER_HOST" in refused.value.message
        # subscriptions/listen (2026-07-28) is a standing stream too, whatever the HTTP method.
        listen = {"jsonrpc": "2.0", "id": 2, "method": "subscriptions/listen", "params": {}}
        with pytest.raises(StreamsExhausted):
            await sender.send("POST", {}, listen)
        held.close()


async def test_a_stream_connection_has_tcp_keepalive(streaming: tuple[str, asyncio.Event]) -> None:
    """A stream has no read timeout: a backend host gone without a reset is found by the kernel's
    keepalive probes, which fail the read (and the follower reconnects), not never."""
    url, _ = streaming
    async with create_session(queue=False) as streams:
        async with streams.get(url) as stream:
            assert stream.connection is not None and stream.connection.transport is not None
            sock = stream.connection.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert (sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL),
                    sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT)) == (
                KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_PROBES)
    assert KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_PROBES <= 180  # a dead host found within minutes
