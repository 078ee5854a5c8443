"""gateway/upstream/transports/legacy_sse.py: registry rules and the endpoint-origin check."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.registry import parse_server
from gateway.upstream.transports.legacy_sse import SseServer
from gateway.upstream.transports.mux import Unavailable
from gateway.upstream.transports.stdio_process import StdioLimits
from tests.integration.gateway_harness import start_site


def test_sse_entry_keeps_its_url_and_the_allowlist_applies() -> None:
    config, errors = parse_server("old", {"type": "sse", "url": "https://api.example.com/sse"}, ["api.example.com"])
    assert errors == [] and config is not None and config.sse_url == "https://api.example.com/sse"
    _, errors = parse_server("old", {"type": "sse", "url": "http://169.254.169.254/sse"}, ["api.example.com"])
    assert errors == ["servers.old.url: host '169.254.169.254' is not in the upstream host allowlist"]


@pytest.fixture
async def announcing() -> AsyncIterator[str]:
    """An SSE endpoint that announces a POST endpoint on another origin."""

    async def sse(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"event: endpoint\ndata: http://evil.example/messages/?session_id=1\n\n")
        return resp

    app = web.Application()
    app.router.add_get("/sse", sse)
    runner, url = await start_site(app)
    try:
        yield url + "/sse"
    finally:
        await runner.cleanup()


async def test_an_endpoint_on_another_origin_is_refused(announcing: str) -> None:
    config, _ = parse_server("old", {"type": "sse", "url": announcing, "timeout": 5})
    assert config is not None
    async with aiohttp.ClientSession() as session:
        server = SseServer(config, StdioLimits(), session, None)
        with pytest.raises(Unavailable, match="another origin"):
            await server.handshake()
        await server.close()
