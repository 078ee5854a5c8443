"""A connection that closes before the backend's answer: idempotent requests are sent once more, calls never."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import parse_servers
from gateway.upstream import UpstreamError, UpstreamPool, create_session
from tests.integration.gateway_harness import start_site


class Dropper:
    """A 2026-07-28 backend (aiohttp on loopback) that drops the connection on each method's first request."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        method = body["method"]
        self.seen[method] += 1
        if method == "server/discover":
            result = {"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "resultType": "complete"}
        elif self.seen[method] == 1:
            assert request.transport is not None
            request.transport.close()  # as a backend going down with the request unanswered
            return web.Response()
        elif method == "tools/list":
            result = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}], "resultType": "complete"}
        else:
            result = {"content": [{"type": "text", "text": "ran"}], "resultType": "complete"}
        return web.json_response({"jsonrpc": "2.0", "id": body["id"], "result": result})


@pytest.fixture
async def dropper() -> AsyncIterator[tuple[Dropper, str]]:
    backend = Dropper()
    app = web.Application()
    app.router.add_post("/mcp", backend.handle)
    runner, url = await start_site(app)
    try:
        yield backend, url + "/mcp"
    finally:
        await runner.cleanup()


async def test_a_list_is_resent_once_but_a_call_is_not(dropper: tuple[Dropper, str]) -> None:
    backend, url = dropper
    servers, errors = parse_servers({"servers": {"d": {"url": url, "timeout": 10}}})
    assert errors == []
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        assert [t["name"] for t in await pool.list_tools(servers["d"])] == ["echo"]
        assert backend.seen["tools/list"] == 2
        with pytest.raises(UpstreamError, match="cannot reach backend"):
            await pool.call_tool(servers["d"], "echo", {})
        assert backend.seen["tools/call"] == 1  # it may have run: never sent twice
