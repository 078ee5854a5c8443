"""`UpstreamPool.heard` against a real SDK backend: a tools/list already in flight when the backend
announces a change neither fills the tool cache with the old list nor answers later calls with it,
so the new tool is callable at once (not after the cache entry's TTL)."""
# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import aiohttp

from gateway.credentials import CredentialStore
from gateway.upstream import UpstreamPool
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.test_upstream import config


async def test_a_listing_in_flight_when_a_change_is_heard_is_not_kept(mcp_backend_factory: Any) -> None:
    backend: Backend = mcp_backend_factory("stateless-json", "heard-race", tools=("echo", "grow_announced"))
    answered, release = asyncio.Event(), asyncio.Event()
    held: list[int] = []

    async def hold_first_listing(session: aiohttp.ClientSession, context: SimpleNamespace, params: Any) -> None:
        # The backend has answered (with the old list); its reader is held until the change is heard.
        if params.headers.get("Mcp-Method") == "tools/list" and not held:
            held.append(1)
            answered.set()
            await release.wait()

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(hold_first_listing)
    srv = config(backend.url)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}), tools_ttl=3600.0)
        try:
            first = asyncio.create_task(pool.catalog(srv))
            await answered.wait()
            grown = await pool.call_tool(srv, "grow_announced", {"name": "fresh_tool"})
            assert "added fresh_tool" in str(grown), grown
            pool.heard("srv")  # the backend's notifications/tools/list_changed
            second = asyncio.create_task(pool.catalog(srv))  # asked while the old listing is in flight
            await asyncio.sleep(0)
            release.set()
            assert "fresh_tool" not in await first  # begun before the change: its own caller gets the old list
            assert "fresh_tool" in await second
            assert "fresh_tool" in await pool.catalog(srv)  # and the cache holds the new list
        finally:
            release.set()
            await pool.close()
