"""gateway.upstream.sender: the one request path, against real loopback servers (backend and token endpoint)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import ServerConfig, parse_servers
from gateway.upstream import UpstreamError, create_session
from gateway.upstream.sender import Sender
from tests.fixtures.oauth_backend import CLIENT_ID, SECRET, OauthBackend

ENV = {"BACKEND_SECRET": SECRET}
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


@dataclass
class Peer:
    """The oauth2 backend, plus a route that redirects and the one it redirects to."""

    backend: OauthBackend = field(default_factory=OauthBackend)
    url: str = ""
    elsewhere: int = 0

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(self.url + "/elsewhere")

    async def other(self, request: web.Request) -> web.Response:
        self.elsewhere += 1
        return web.json_response({})


@pytest.fixture
async def peer(aiohttp_server: Any) -> AsyncIterator[Peer]:
    peer = Peer()
    app = peer.backend.app()
    app.router.add_post("/moved", peer.moved)
    app.router.add_post("/elsewhere", peer.other)
    server = await aiohttp_server(app)
    peer.url = str(server.make_url("")).rstrip("/")
    yield peer


def config(url: str, auth: dict[str, Any]) -> ServerConfig:
    parsed, errors = parse_servers({"servers": {"b": {"url": url, "auth": auth, "timeout": 5}}})
    assert errors == []
    return parsed["b"]


def oauth2(peer: Peer, client_id: str = CLIENT_ID) -> dict[str, Any]:
    return {"method": "oauth2", "token_url": peer.url + "/token", "client_id": client_id,
            "client_secret_ref": "env://BACKEND_SECRET"}


async def send(server: ServerConfig, message: dict[str, Any] | None = PING) -> int:
    async with create_session() as session:
        store = CredentialStore(session, environ=ENV)
        resolved, errors = store.resolve([server])
        assert errors == []
        store.commit(resolved)
        async with await Sender(server, session, store).send("POST", {}, message) as resp:
            return resp.status


async def test_a_token_the_backend_revoked_is_refreshed_and_the_request_sent_once_more(peer: Peer) -> None:
    peer.backend.revoked.add("tok-1")
    assert await send(config(peer.url + "/mcp", oauth2(peer))) == 200
    assert peer.backend.seen == ["Bearer tok-1", "Bearer tok-2"] and peer.backend.grants == 2


async def test_a_second_401_is_returned_not_retried_again(peer: Peer) -> None:
    peer.backend.refuse_all = True
    assert await send(config(peer.url + "/mcp", oauth2(peer))) == 401
    assert peer.backend.seen == ["Bearer tok-1", "Bearer tok-2"]


async def test_a_static_credential_is_not_retried(peer: Peer) -> None:
    peer.backend.refuse_all = True
    auth = {"method": "bearer", "credential_ref": "env://BACKEND_SECRET"}
    assert await send(config(peer.url + "/mcp", auth)) == 401
    assert peer.backend.seen == [f"Bearer {SECRET}"]


async def test_a_credential_failure_is_a_502_and_nothing_is_sent(peer: Peer) -> None:
    with pytest.raises(UpstreamError, match="credential unavailable") as raised:
        await send(config(peer.url + "/mcp", oauth2(peer, client_id="wrong")))
    assert raised.value.http_status == 502 and peer.backend.seen == []


async def test_a_redirect_is_not_followed(peer: Peer) -> None:
    auth = {"method": "bearer", "credential_ref": "env://BACKEND_SECRET"}
    assert await send(config(peer.url + "/moved", auth)) == 307
    assert peer.elsewhere == 0


async def test_an_unreachable_backend_is_an_upstream_error() -> None:
    with pytest.raises(UpstreamError, match="cannot reach backend"):
        await send(config("http://127.0.0.1:9/mcp", {"method": "none"}))


async def test_a_request_waiting_for_a_free_pooled_connection_fails_within_the_timeout() -> None:
    """A pool whose one connection per host is held by an open stream: the next request fails (504),
    it does not wait forever for a connection that never frees."""
    from gateway.upstream import UpstreamTimeout
    from tests.integration.gateway_harness import start_site

    done = asyncio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await done.wait()  # open until the test ends
        return resp

    app = web.Application()
    app.router.add_get("/mcp", stream)
    runner, url = await start_site(app)
    parsed, errors = parse_servers({"servers": {"b": {"url": url + "/mcp", "timeout": 0.5}}})
    assert errors == []
    try:
        async with create_session(limit_per_host=1) as session:
            sender = Sender(parsed["b"], session, None)
            held = await sender.send("GET", {"Accept": "text/event-stream"}, stream=True)
            try:
                async with asyncio.timeout(10):  # without the pool-wait bound: waits forever
                    with pytest.raises(UpstreamTimeout):
                        await sender.send("POST", {}, PING)
            finally:
                held.close()
    finally:
        done.set()
        await runner.cleanup()
