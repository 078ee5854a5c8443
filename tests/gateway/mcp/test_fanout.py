"""gateway.mcp.fanout: a list a backend never advertised is empty, not a backend failure; the list cache is bounded."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from gateway.mcp import fanout
from gateway.upstream import codec
from gateway.upstream.errors import UpstreamRpcError
from gateway.upstream.toolcache import ToolNames

NOT_FOUND = {"code": -32601, "message": "Method not found"}


class Pool:
    """Answers every request with `error`; its backend advertises `caps`."""

    def __init__(self, caps: dict[str, Any], error: dict[str, Any]) -> None:
        self.info = {"capabilities": caps}
        self.error = error
        self.credentials = SimpleNamespace(forms=lambda server: [])

    def client(self, server: Any, caller: Any = None) -> Any:
        return SimpleNamespace(server_info=self.info)

    async def request(self, server: Any, method: str, params: Any = None, caller: Any = None) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": 1, "error": self.error}

    async def every_page(self, server: str, method: str, page: Any) -> list[dict[str, Any]]:
        return await codec.every_page(server, method, page)  # the pool's paginator, without its limits


SERVER = SimpleNamespace(name="memory")


async def test_unadvertised_list_is_empty() -> None:
    assert await fanout.list_all(Pool({"tools": {}, "resources": {}}, NOT_FOUND), SERVER, "prompts/list") == []


@pytest.mark.parametrize("caps,error", [
    ({"prompts": {}}, NOT_FOUND),  # advertised, then refused: a real failure
    ({}, {"code": -32603, "message": "boom"}),  # not advertised, but a different error
])
async def test_other_refusals_stay_failures(caps: dict[str, Any], error: dict[str, Any]) -> None:
    with pytest.raises(UpstreamRpcError):
        await fanout.list_all(Pool(caps, error), SERVER, "prompts/list")


class Growing:
    """A backend whose tools list is whatever `tools` holds now."""

    def __init__(self) -> None:
        self.tools = [{"name": "a"}]
        self.requests = 0
        self.tool_names = ToolNames(60.0)

    def client(self, server: Any, caller: Any = None) -> Any:
        return SimpleNamespace(server_info={"capabilities": {"tools": {}}})

    def remember_tools(self, server: str, items: Any, epoch: int) -> None:
        pass

    async def request(self, server: Any, method: str, params: Any = None, caller: Any = None) -> dict[str, Any]:
        self.requests += 1
        return {"jsonrpc": "2.0", "id": 1, "result": {"tools": list(self.tools)}}

    async def every_page(self, server: str, method: str, page: Any) -> list[dict[str, Any]]:
        return await codec.every_page(server, method, page)


async def test_a_cleared_cache_reads_the_backend_again() -> None:
    pool, cache = Growing(), fanout.ListCache(ttl=3600)
    assert await cache.get(pool, SERVER, "tools/list") == [{"name": "a"}]
    pool.tools.append({"name": "b"})
    assert await cache.get(pool, SERVER, "tools/list") == [{"name": "a"}] and pool.requests == 1  # cached
    cache.clear()  # the catalog poller found a change (watched.catalogs_ctx)
    assert await cache.get(pool, SERVER, "tools/list") == [{"name": "a"}, {"name": "b"}] and pool.requests == 2


class Held(Growing):
    """A Growing backend whose first listing waits for `go` (a change lands while it is in flight)."""

    def __init__(self) -> None:
        super().__init__()
        self.asked, self.go = asyncio.Event(), asyncio.Event()

    async def request(self, server: Any, method: str, params: Any = None, caller: Any = None) -> dict[str, Any]:
        tools = list(self.tools)  # what the backend had when asked
        if self.requests == 0:
            self.asked.set()
            await self.go.wait()
        self.requests += 1
        return {"jsonrpc": "2.0", "id": 1, "result": {"tools": tools}}


async def test_a_listing_begun_before_a_change_is_neither_joined_nor_kept() -> None:
    pool, cache = Held(), fanout.ListCache(ttl=3600)
    old = asyncio.create_task(cache.get(pool, SERVER, "tools/list"))
    await pool.asked.wait()
    pool.tools.append({"name": "b"})
    cache.clear()  # list_changed: an agent told so must see b
    fresh = asyncio.create_task(cache.get(pool, SERVER, "tools/list"))  # not joined to the old listing
    pool.go.set()
    assert await old == [{"name": "a"}]
    assert await fresh == [{"name": "a"}, {"name": "b"}]
    assert await cache.get(pool, SERVER, "tools/list") == [{"name": "a"}, {"name": "b"}]  # the old one not stored


class Sized(Growing):
    """A backend per server name whose tools list is `sizes[name]` bytes of JSON; counts reads per server."""

    def __init__(self, sizes: dict[str, int]) -> None:
        super().__init__()
        self.sizes = sizes
        self.reads: dict[str, int] = {}

    async def request(self, server: Any, method: str, params: Any = None, caller: Any = None) -> dict[str, Any]:
        self.reads[server.name] = self.reads.get(server.name, 0) + 1
        # [{"name":"…"}] is 13 bytes of JSON around the name
        return {"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "x" * (self.sizes[server.name] - 13)}]}}


async def test_the_list_cache_keeps_at_most_its_byte_bound_dropping_the_oldest() -> None:
    pool = Sized({"a": 400, "b": 400, "c": 400, "huge": 2000})
    cache = fanout.ListCache(ttl=3600, max_bytes=1000)
    servers = {name: SimpleNamespace(name=name) for name in pool.sizes}
    for name in "abc":
        await cache.get(pool, servers[name], "tools/list")
    assert cache.size == 800  # a went when c came: 1,200 bytes would not fit
    for name in "bc":
        await cache.get(pool, servers[name], "tools/list")
    assert pool.reads == {"a": 1, "b": 1, "c": 1}  # b and c kept
    await cache.get(pool, servers["a"], "tools/list")
    assert pool.reads["a"] == 2 and cache.size == 800  # a read again; b, now the oldest, went
    # A list larger than the whole bound is served but never kept, and evicts nothing.
    assert len((await cache.get(pool, servers["huge"], "tools/list"))[0]["name"]) == 1987
    await cache.get(pool, servers["huge"], "tools/list")
    assert pool.reads["huge"] == 2 and cache.size == 800
    await cache.get(pool, servers["c"], "tools/list")
    assert pool.reads["c"] == 1
    cache.clear()
    assert cache.size == 0
