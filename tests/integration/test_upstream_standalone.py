"""`GetStreams` (gateway/upstream/standalone.py) against a loopback backend's GET endpoint: opened
before the call goes on, requests handed to the oldest call, 409 retried, 405 remembered, bounded
per backend, closed when the last call leaves."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import ServerConfig
from gateway.upstream.client import LEGACY, BackendClient
from gateway.upstream.standalone import GetStreams

ASK = {"jsonrpc": "2.0", "id": 7, "method": "roots/list", "params": {}}


@dataclass
class FakeBackend:
    statuses: list[int] = field(default_factory=list)  # answers to the next GETs (then 200)
    gets: int = 0
    open: asyncio.Event = field(default_factory=asyncio.Event)
    send: asyncio.Event = field(default_factory=asyncio.Event)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    posted: list[Any] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)  # sent before the request

    async def get(self, request: web.Request) -> web.StreamResponse:
        self.gets += 1
        if self.statuses:
            return web.json_response({"error": "no"}, status=self.statuses.pop(0))
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        self.open.set()
        try:
            await self.send.wait()
            for message in [*self.notes, ASK]:
                await out.write(f"event: message\ndata: {json.dumps(message)}\n\n".encode())
            await asyncio.Event().wait()  # held open until the client leaves
        finally:
            self.gone.set()
        return out

    async def post(self, request: web.Request) -> web.Response:
        self.posted.append(await request.json())
        return web.Response(status=202)


@pytest.fixture
async def backend() -> AsyncIterator[tuple[FakeBackend, str]]:
    fake = FakeBackend()
    app = web.Application()
    app.router.add_get("/mcp", fake.get)
    app.router.add_post("/mcp", fake.post)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)  # `gone` on disconnect
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield fake, f"http://127.0.0.1:{port}/mcp"
    finally:
        await runner.cleanup()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _client(http: aiohttp.ClientSession, url: str, name: str = "b") -> BackendClient:
    client = BackendClient(ServerConfig(name=name, url=url, timeout=5.0), http, CredentialStore(http, environ={}))
    client.era, client.session_id, client.protocol_version = LEGACY, "sess-1", "2025-11-25"
    return client


def _sink(into: list[dict[str, Any]], got: asyncio.Event) -> Any:
    async def sink(message: dict[str, Any]) -> None:
        into.append(message)
        got.set()
    return sink


async def test_a_request_on_the_get_stream_reaches_the_oldest_call_and_the_stream_closes_after(
    backend: tuple[FakeBackend, str], http: aiohttp.ClientSession,
) -> None:
    fake, url = backend
    fake.statuses = [409]  # the session's previous stream not yet seen closed: retried
    streams, client = GetStreams(), _client(http, url)
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []
    got = asyncio.Event()
    async with streams.during(client, _sink(first, got)):
        assert fake.open.is_set()  # open before the call goes on
        async with streams.during(client, _sink(second, asyncio.Event())):
            assert fake.gets == 2 and len(streams) == 1  # one stream for both calls
            fake.send.set()
            await got.wait()
    assert first == [ASK] and second == []
    await fake.gone.wait()  # closed once no call needs it
    assert len(streams) == 0


async def test_a_backend_refusing_get_is_not_asked_again(
    backend: tuple[FakeBackend, str], http: aiohttp.ClientSession,
) -> None:
    fake, url = backend
    fake.statuses = [405]
    streams, client = GetStreams(), _client(http, url)
    async with streams.during(client, _sink([], asyncio.Event())):
        pass
    async with streams.during(client, _sink([], asyncio.Event())):
        assert len(streams) == 0
    assert fake.gets == 1


async def test_streams_per_backend_are_bounded_and_modern_sessions_have_none(
    backend: tuple[FakeBackend, str], http: aiohttp.ClientSession,
) -> None:
    fake, url = backend
    streams = GetStreams(per_backend=1)
    one, two, modern = _client(http, url), _client(http, url), _client(http, url)
    modern.era = "2026-07-28"
    async with streams.during(one, _sink([], asyncio.Event())), streams.during(two, _sink([], asyncio.Event())), \
            streams.during(modern, _sink([], asyncio.Event())):
        assert len(streams) == 1 and fake.gets == 1
    await streams.close()


async def test_a_list_change_announced_on_the_get_stream_is_heard(
    backend: tuple[FakeBackend, str], http: aiohttp.ClientSession,
) -> None:
    fake, url = backend
    fake.notes = [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"},
                  {"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info", "data": "x"}}]
    heard: list[str] = []
    streams, client = GetStreams(), _client(http, url, "announcer")
    client.http.ear = lambda: heard.append("announcer")  # what the pool gives its clients (pool.heard)
    got = asyncio.Event()
    async with streams.during(client, _sink([], got)):
        fake.send.set()
        await got.wait()  # the request comes after the notes: they were read
    assert heard == ["announcer"]
    await streams.close()
