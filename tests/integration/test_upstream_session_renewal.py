"""A backend session renewed while other requests are in flight (gateway/upstream/session.py): the
old session id is kept until the new session is ready, so requests racing the renewal are refused
as stale and sent again in the new session — one new session, nothing sent without a session id."""
# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import parse_servers
from gateway.upstream import UpstreamError, create_session
from gateway.upstream.client import BackendClient
from gateway.upstream.sender import drain_background
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import start_site


async def test_requests_racing_a_renewal_heal_in_one_new_session(mcp_backend_factory: Callable[..., Backend]) -> None:
    backend = mcp_backend_factory("legacy", "renewing")
    servers, errors = parse_servers({"servers": {"srv": {"url": backend.url, "timeout": 10}}})
    assert errors == []
    async with create_session() as http:
        client = BackendClient(servers["srv"], http, CredentialStore(http, environ={}))
        await client.request("tools/list")
        old = client.session_id
        assert old and client.initialize_count == 1
        # The backend forgets the session (as after a restart or an idle expiry): it now answers 404.
        async with http.delete(backend.url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-11-25"}) as r:
            assert r.status in (200, 204)
        backend.clear()
        texts = [str(i) for i in range(8)]
        replies = await asyncio.gather(*(client.request("tools/call", {"name": "echo", "arguments": {"text": t}})
                                         for t in texts))
        assert [r.response["result"]["content"][0]["text"] for r in replies] == texts
        assert client.initialize_count == 2 and client.session_id not in (None, old)
        posts = [(r.headers.get("mcp-session-id"), r.json()) for r in backend.requests if r.method == "POST"]
        assert [body for sid, body in posts if sid is None and body.get("method") != "initialize"] == []
        ran = [body["params"]["arguments"]["text"] for sid, body in posts
               if sid == client.session_id and body.get("method") == "tools/call"]
        assert sorted(ran) == texts  # each call ran once, in the new session


class Gate:
    """A loopback proxy in front of the backend that holds each `initialize` (while armed) until released."""

    def __init__(self, target: str) -> None:
        self.target, self.armed = target, False
        self.arrived, self.release = asyncio.Event(), asyncio.Event()
        self.meanwhile = asyncio.Event()  # a request posted while an initialize is held
        self.posted: list[tuple[str | None, dict[str, Any]]] = []  # (session id, body) as they arrive
        self.opened: list[str] = []  # session ids the backend gave at initialize

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = orjson.loads(body) if body else {}
        sid = request.headers.get("Mcp-Session-Id")
        if request.method == "POST":
            self.posted.append((sid, message))
            if self.arrived.is_set() and not self.release.is_set():
                self.meanwhile.set()
        if message.get("method") == "initialize" and self.armed:
            self.arrived.set()
            await self.release.wait()
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("mcp-session-id", "mcp-protocol-version", "accept", "content-type")}
        async with aiohttp.ClientSession() as http, \
                http.request(request.method, self.target, data=body or None, headers=headers) as resp:
            out = await resp.read()
            if message.get("method") == "initialize" and resp.headers.get("Mcp-Session-Id"):
                self.opened.append(resp.headers["Mcp-Session-Id"])
            kept = {k: v for k, v in resp.headers.items() if k.lower() in ("mcp-session-id", "content-type")}
            return web.Response(status=resp.status, body=out, headers=kept)


@contextlib.asynccontextmanager
async def gated(backend: Backend) -> AsyncIterator[tuple[Gate, BackendClient, aiohttp.ClientSession]]:
    gate = Gate(backend.url)
    app = web.Application()
    app.router.add_route("*", "/mcp", gate.forward)
    runner, url = await start_site(app)
    servers, errors = parse_servers({"servers": {"srv": {"url": url + "/mcp", "timeout": 10}}})
    assert errors == []
    try:
        async with create_session() as http:
            client = BackendClient(servers["srv"], http, CredentialStore(http, environ={}))
            await client.request("tools/list")
            yield gate, client, http
    finally:
        gate.release.set()
        await runner.cleanup()


async def test_a_request_sent_during_the_renewal_is_refused_as_stale_and_resent_in_the_new_session(
    mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("legacy", "renewing-held")
    async with gated(backend) as (gate, client, http):
        old = client.session_id
        async with http.delete(backend.url, headers={"Mcp-Session-Id": old or "", "MCP-Protocol-Version": "2025-11-25"}):
            pass
        gate.armed = True
        first = asyncio.ensure_future(client.request("tools/call", {"name": "echo", "arguments": {"text": "a"}}))
        await gate.arrived.wait()  # the renewal is under way: its initialize is held
        second = asyncio.ensure_future(client.request("tools/call", {"name": "echo", "arguments": {"text": "b"}}))
        await gate.meanwhile.wait()
        # Sent meanwhile, it carried the old id (still ours until the new session is ready)...
        assert [sid for sid, m in gate.posted if m.get("params", {}).get("arguments") == {"text": "b"}] == [old]
        gate.release.set()
        replies = await asyncio.gather(first, second)
        assert [r.response["result"]["content"][0]["text"] for r in replies] == ["a", "b"]
        # ... and was resent in the one new session.
        assert client.initialize_count == 2 and client.session_id == gate.opened[-1] != old


async def test_a_session_ended_during_its_renewal_ends_the_new_session_too(
    mcp_backend_factory: Callable[..., Backend]
) -> None:
    backend = mcp_backend_factory("legacy", "renewing-ended")
    async with gated(backend) as (gate, client, _):
        gate.armed = True
        renewal = asyncio.ensure_future(client.renew_session(client.session_id))
        await gate.arrived.wait()
        client.end_soon()  # evicted meanwhile
        gate.release.set()
        with pytest.raises(UpstreamError):
            await renewal
        await drain_background()
        new = gate.opened[-1]
        assert any(r.method == "DELETE" and r.headers.get("mcp-session-id") == new for r in list(backend.requests))
        assert client.session_id != new
