"""Backends' lists as `/mcp` reads them: every page of one (`list_all`), kept a few seconds with one
fetch in flight per list (`ListCache`), bounded in entries and in bytes."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import orjson

from gateway.mcp.listen import advertised
from gateway.mcp.protocol import METHOD_NOT_FOUND
from gateway.registry import ServerConfig
from gateway.upstream.errors import UpstreamRpcError
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.sessions import Caller

log = logging.getLogger(__name__)


async def list_all(pool: UpstreamPool, server: ServerConfig, method: str, caller: Caller | None = None) -> list[dict[str, Any]]:
    """Every item of one backend's list (as `caller`'s backend session sees it), following cursors."""
    async def page(params: dict[str, Any] | None) -> Any:
        response = await pool.request(server, method, params, caller)
        if "error" in response:
            raise UpstreamRpcError(server.name, response["error"] if isinstance(response["error"], dict) else {},
                                   pool.credentials.forms(server))
        return response.get("result")

    try:
        return await pool.every_page(server.name, method, page)
    except UpstreamRpcError as exc:
        # Refused as unknown and never advertised (prompts/list on server-memory): nothing to list, no failure.
        if exc.code == METHOD_NOT_FOUND and method not in advertised(pool.client(server, caller).server_info):
            return []
        raise


Key = tuple[str, str, Caller | None]
Entry = tuple[float, ServerConfig, list[dict[str, Any]], int]  # expiry, config, items, their JSON size


class ListCache:
    """Per (server, method, backend session) lists, reused for `ttl` seconds; one fetch in flight per
    key; at most `max_entries` kept (a 2025-era backend's entries are per caller's backend session) and
    `max_bytes` of items (as JSON) in all: the oldest stored go first; a list larger than that is
    served, not kept."""

    def __init__(self, ttl: float = 5.0, max_entries: int = 4096, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.size = 0  # bytes of the entries kept
        self._entries: dict[Key, Entry] = {}
        self._inflight: dict[Key, asyncio.Future[list[dict[str, Any]]]] = {}
        self._generation = 0  # bumped by clear(): a listing begun before a change is not kept

    async def get(self, pool: UpstreamPool, server: ServerConfig, method: str, caller: Caller | None = None) -> list[dict[str, Any]]:
        """The cached list, or a fresh one (a changed server config invalidates its entries)."""
        owner = caller if caller is not None and pool.client(server, caller) is not pool.client(server) else None
        key = (server.name, method, owner)
        entry = self._entries.get(key)
        now = time.monotonic()
        if entry is not None and now < entry[0] and entry[1] == server:
            return entry[2]
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        generation = self._generation
        try:
            epoch = pool.tool_names.epoch(server.name)
            items = await list_all(pool, server, method, caller)
            if method == "tools/list" and owner is None:
                # the catalog calls are checked against; a caller's own session may list more (a
                # backend offers some tools only to clients declaring a capability): not the server's
                pool.remember_tools(server.name, items, epoch)
            if generation == self._generation:
                self._store(key, server, items)
            future.set_result(items)
            return items
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here, so an unawaited future does not warn
            raise
        finally:
            if self._inflight.get(key) is future:
                del self._inflight[key]

    def clear(self) -> None:
        """Forget every list: a backend's catalog changed, and an agent told so must not re-read the old one."""
        self._entries.clear()
        self.size = 0
        self._inflight.clear()
        self._generation += 1

    def _store(self, key: Key, server: ServerConfig, items: list[dict[str, Any]]) -> None:
        size = len(orjson.dumps(items))
        self._drop(key)  # a stale entry of the same key
        if size > self.max_bytes:
            return  # served to this caller, never kept: it would evict every other list
        now = time.monotonic()
        if len(self._entries) >= self.max_entries or self.size + size > self.max_bytes:
            for stale in [k for k, v in self._entries.items() if v[0] <= now]:
                self._drop(stale)
            # all live: the oldest stored go (insertion order)
            while len(self._entries) >= self.max_entries or self.size + size > self.max_bytes:
                self._drop(next(iter(self._entries)))
        self._entries[key] = (now + self.ttl, server, items, size)
        self.size += size

    def _drop(self, key: Key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self.size -= entry[3]
