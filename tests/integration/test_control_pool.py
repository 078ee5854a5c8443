"""The PDP, the JWKS and token endpoints have a connection pool of their own: backends holding
every pooled connection (slow calls, long-lived streams) leave the gateway able to decide.

The backend pool is shrunk to 2 connections (idle ones kept 0.1 s: an idle pooled connection is
reused past the limit) and a backend that never answers holds both; a caller the PDP has not
decided for yet must still be answered by policy, not time out into "PDP unreachable"."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.integration.gateway_harness import Stack, gateway_stack, start_site


@pytest.fixture
async def holding() -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Event]]:
    """A backend that takes requests and never answers until released; `both` is set at two."""
    seen: list[web.Request] = []
    both, release = asyncio.Event(), asyncio.Event()

    async def hold(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        if len(seen) >= 2:
            both.set()
        await release.wait()
        return web.json_response({"jsonrpc": "2.0", "id": 1, "error": {"code": -32603, "message": "released"}})

    app = web.Application()
    app.router.add_route("*", "/mcp", hold)
    runner, url = await start_site(app)
    try:
        yield url + "/mcp", both, release
    finally:
        release.set()
        await runner.cleanup()


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, holding: tuple[str, asyncio.Event, asyncio.Event],
                monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    import gateway.upstream

    monkeypatch.setattr(gateway.upstream, "create_session",
                        functools.partial(gateway.upstream.create_session, limit=2, limit_per_host=2, keepalive=0.1))
    async with gateway_stack(tmp_path, pg_dsn, {"held": {"url": holding[0], "timeout": 30},
                                                       "held2": {"url": holding[0], "timeout": 30}},
                             env={"MCPGW_GATEWAY_PDP_TIMEOUT": "2"}) as s:
        yield s


async def test_backends_holding_every_connection_do_not_stop_decisions(
        stack: Stack, holding: tuple[str, asyncio.Event, asyncio.Event]) -> None:
    _, both, release = holding
    calls = [asyncio.create_task(stack.call("POST", f"/mcp/invoke?mcp_server={server}",
                                            json={"tool_name": "echo", "parameters": {"text": "x"}}))
             for server in ("held", "held2")]  # one listing each (a backend's listings are shared)
    async with asyncio.timeout(10):
        await both.wait()  # both pooled backend connections are now held
    await asyncio.sleep(0.5)  # past the keep-alive: the PDP's idle connection (which skips the limit) is closed
    status, body, _ = await stack.call("GET", "/mcp/servers", subject="dev@example.com")
    assert status == 200, body  # decided by the PDP, not "PDP unreachable" after its timeout
    assert "held" in str(body), body
    release.set()
    for call in calls:
        await call
