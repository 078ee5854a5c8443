"""The upstream ClientSession closes idle keep-alive connections before common servers do."""

from __future__ import annotations

import asyncio

from gateway.upstream import create_session
from gateway.upstream.pool import IDLE_KEEPALIVE

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
