"""Aggregated `*/list_changed` on `/mcp` (2025 GET stream, 2026-07-28 `subscriptions/listen`) and
the one catalog poller per app behind them.

One `CatalogPoller` reads the backends' advertised lists every POLL_SECONDS while any stream is open
(and at once, debounced, when a backend announces its own change: upstream/changes.py). A stream
re-reads the caller's filtered view when the stamp moves (a change, or the re-filter period for
policy changes; one PDP search per subject and stamp) and notifies when that view changed. Relaying
backends' own notifications instead could leak items the caller may not see.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from typing import Any

from aiohttp import web

from gateway.mcp.protocol import RequestId
from gateway.registry import ServerConfig
from gateway.upstream import sse
from shared.jsonutil import dumps
from shared.runtime import cancel_and_wait

log = logging.getLogger(__name__)

# list method -> the server capability that offers it
CAPABILITY = {"tools/list": "tools", "prompts/list": "prompts", "resources/list": "resources",
              "resources/templates/list": "resources"}
REFILTER_SECONDS = 60.0  # policy can change without a catalog change: re-filter this often anyway
MAX_VIEWS = 1024
DEBOUNCE = 0.05  # seconds a backend's announcement waits for the rest of its burst before the read
MIN_REREAD = 1.0  # seconds between a backend's announced re-reads (one repeating list_changed costs 1 read/s)
Watch = Callable[[ServerConfig, Callable[[], None]], Coroutine[Any, Any, None]]  # follows one backend; calls poke on a change


def advertised(server_info: Mapping[str, Any]) -> list[str]:
    """The list methods a backend's capabilities offer (a backend advertising none is not polled)."""
    caps = server_info.get("capabilities")
    caps = caps if isinstance(caps, Mapping) else {}
    return [method for method, cap in CAPABILITY.items() if isinstance(caps.get(cap), Mapping)]


def digest(lists: Mapping[str, Mapping[str, list[dict[str, Any]]]]) -> str:
    """One order-independent digest of every backend's lists (what changed is worked out per caller)."""
    return fingerprint([[m, s, item] for m, per in lists.items() for s, items in per.items() for item in items])


class CatalogPoller:
    """The shared lists (`lists[method][server]`), their `generation`, and per-subject filtered views."""

    def __init__(self) -> None:
        self.lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.generation = 0
        self.polls = 0  # backend lists read (all streams together)
        self.rounds = 0  # refreshes done
        self.subscribers = 0
        self.views: dict[Any, asyncio.Future[Any]] = {}
        self._digest: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._fetch: Callable[[ServerConfig, str], Awaitable[list[dict[str, Any]]]] | None = None
        self._servers: Callable[[], Iterable[ServerConfig]] = list
        self._info: Callable[[ServerConfig], Awaitable[Mapping[str, Any]]] | None = None
        self._interval: Callable[[], float] = lambda: 10.0
        self._changed: Callable[[], None] = lambda: None
        self._watch: Watch | None = None
        self._watchers: dict[str, tuple[ServerConfig, asyncio.Task[None]]] = {}
        self._poked: dict[str, asyncio.Task[None]] = {}  # backends whose re-read is pending
        self._reread_at: dict[str, float] = {}  # loop time of each backend's last announced re-read

    def bind(self, fetch: Callable[[ServerConfig, str], Awaitable[list[dict[str, Any]]]], servers: Callable[[], Iterable[ServerConfig]],
             info: Callable[[ServerConfig], Awaitable[Mapping[str, Any]]], interval: Callable[[], float],
             changed: Callable[[], None] = lambda: None, watch: Watch | None = None) -> None:
        """Where lists come from: `fetch(server, method)`, the enabled `servers()`, each one's `info`;
        `changed()` runs when a new generation is found, before any stream can announce it; `watch`
        follows one backend's own change announcements while streams are open."""
        self._fetch, self._servers, self._info, self._interval = fetch, servers, info, interval
        self._changed, self._watch = changed, watch

    @contextlib.asynccontextmanager
    async def subscribed(self) -> AsyncIterator[None]:
        """Hold the poller running (with fresh-enough lists) while a stream is open."""
        self.subscribers += 1
        try:
            if self._digest is None:
                await self.refresh(first=True)
            if self._task is None or self._task.done():
                self._task = asyncio.get_running_loop().create_task(self._run())
            self._follow()
            yield
        finally:
            self.subscribers -= 1
            if self.subscribers <= 0:
                self._unfollow(set())

    def poke(self, server: str) -> None:
        """Backend `server` announced a list change: re-read its lists soon (once per burst)."""
        if server not in self._poked and self.subscribers > 0:
            self._poked[server] = asyncio.get_running_loop().create_task(self._reread(server))

    async def _reread(self, server: str) -> None:
        loop = asyncio.get_running_loop()
        last = self._reread_at.get(server)
        try:
            await asyncio.sleep(DEBOUNCE if last is None else max(DEBOUNCE, last + MIN_REREAD - loop.time()))
        finally:
            del self._poked[server]  # an announcement from now on is read again, after this read
        self._reread_at[server] = loop.time()
        try:
            await self.refresh(only=server)
        except Exception as exc:  # noqa: BLE001 - the next announcement or poll tries again
            log.warning("catalog re-read failed", extra={"server": server, "error": str(exc)})

    def _follow(self) -> None:
        """Watch every enabled backend (a changed configuration restarts its watcher)."""
        if self._watch is None:
            return
        servers = {s.name: s for s in self._servers()}
        self._unfollow({n for n, (config, _) in self._watchers.items() if servers.get(n) == config})
        for name, config in servers.items():
            if name not in self._watchers:
                task = asyncio.get_running_loop().create_task(self._watch(config, functools.partial(self.poke, name)))
                self._watchers[name] = (config, task)

    def _unfollow(self, keep: set[str]) -> None:
        for name in [n for n in self._watchers if n not in keep]:
            self._watchers.pop(name)[1].cancel()

    def stamp(self) -> tuple[int, int]:
        """Changes when the shared lists changed or the re-filter period turned."""
        return self.generation, int(time.monotonic() // REFILTER_SECONDS)

    async def view(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        """`compute()` once per `key` (subject, kinds, stamp) however many streams ask."""
        found = self.views.get(key)
        if found is None:
            if len(self.views) >= MAX_VIEWS:
                self.views.clear()
            found = self.views[key] = asyncio.ensure_future(compute())
            found.add_done_callback(lambda f: self.views.pop(key, None) if f.cancelled() or f.exception() else None)
        return await asyncio.shield(found)

    async def refresh(self, first: bool = False, only: str | None = None) -> None:
        """Read every enabled backend's advertised lists once (`only` that one's; the others keep
        theirs); a new generation if anything changed.

        `first`: only if nothing was read yet (streams opening together wait for one read, not one each).
        """
        if self._fetch is None or self._info is None:
            return
        async with self._lock:
            if first and self._digest is not None:
                return
            self.rounds += 1
            servers = list(self._servers())
            read = [s for s in servers if only is None or s.name == only]
            results = dict(zip((s.name for s in read),
                               await asyncio.gather(*(self._one(s) for s in read), return_exceptions=True), strict=True))
            lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for server in servers:
                result = results.get(server.name)
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
                if result is None or isinstance(result, Exception):
                    # Not read, or failed (a blip is not a catalog change): the backend keeps its last lists.
                    result = {m: per[server.name] for m, per in self.lists.items() if server.name in per}
                for method, items in result.items():
                    lists.setdefault(method, {})[server.name] = items
            new = digest(lists)
            self.lists = lists
            if new != self._digest:
                self._digest = new
                self._changed()
                self.generation += 1
                self.views.clear()

    async def _one(self, server: ServerConfig) -> dict[str, list[dict[str, Any]]]:
        assert self._fetch is not None and self._info is not None
        methods = advertised(await self._info(server))
        self.polls += len(methods)
        found = await asyncio.gather(*(self._fetch(server, m) for m in methods))
        return dict(zip(methods, found, strict=True))

    async def _run(self) -> None:
        while self.subscribers > 0:
            await asyncio.sleep(self._interval())
            if self.subscribers <= 0:
                break
            self._follow()
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the poller must outlive any one bad round
                log.warning("catalog poll failed", extra={"error": str(exc)})

    async def close(self) -> None:
        """Stop polling and watching (app shutdown)."""
        watchers = [task for _, task in self._watchers.values()]
        self._unfollow(set())
        for task in [*watchers, *self._poked.values()]:
            await cancel_and_wait(task)
        await cancel_and_wait(self._task)
        self._task = None


POLL_SECONDS = 10.0
KEEPALIVE = 15.0
TICK = 0.05
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
TOOLS = "notifications/tools/list_changed"
PROMPTS = "notifications/prompts/list_changed"
RESOURCES = "notifications/resources/list_changed"
# subscriptions/listen filter key (2026-07-28) -> the notification it opts in to.
FILTER_KEYS = {"toolsListChanged": TOOLS, "promptsListChanged": PROMPTS, "resourcesListChanged": RESOURCES}

Snapshot = Callable[[], Awaitable[Mapping[str, str]]]  # the caller's digest per notification kind


def fingerprint(items: list[Any]) -> str:
    """A digest of a catalog; equal catalogs give equal digests whatever the order."""
    return hashlib.sha256(dumps(sorted(items, key=dumps))).hexdigest()


def changed(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """The kinds whose digest differs (sorted, so notifications go out in a stable order)."""
    return sorted(k for k in after if before.get(k) != after[k])


def honoured(wanted: Mapping[str, Any]) -> dict[str, bool]:
    """The subset of a `subscriptions/listen` filter this gateway honours (list changes only)."""
    return {key: True for key in FILTER_KEYS if wanted.get(key) is True}


def kinds_of(filter_: Mapping[str, Any]) -> set[str]:
    """The notification methods an acknowledged filter opts in to."""
    return {FILTER_KEYS[key] for key in filter_ if key in FILTER_KEYS}


def notification(method: str, subscription: RequestId = None, **params: Any) -> dict[str, Any]:
    """A notification with `params`, tagged with the listen request's id on a 2026-07-28 stream."""
    if subscription is not None:
        params["_meta"] = {SUBSCRIPTION_ID: subscription}
    return {"jsonrpc": "2.0", "method": method, **({"params": params} if params else {})}


async def watch(request: web.Request, out: web.StreamResponse, snapshot: Snapshot, subscription: RequestId = None,
                drain: Callable[[], bytes] | None = None, stamp: Callable[[], Any] = lambda: None) -> None:
    """Until the client leaves: keep-alives, a notification whenever a watched catalog changes (looked
    at when `stamp()` moves), and whatever `drain` has ready (resource updates) every tick."""
    seen = stamp()
    last = dict(await snapshot())
    since_write = 0.0
    # aiohttp does not cancel a handler when its client leaves: watch the transport.
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(TICK)
        since_write += TICK
        ready = drain() if drain is not None else b""
        if ready:
            await out.write(ready)
            since_write = 0.0
        if stamp() != seen:
            seen = stamp()
            current = dict(await snapshot())
            kinds = changed(last, current)
            last = current
            if kinds:
                await out.write(b"".join(sse.json_event(notification(k, subscription)) for k in kinds))
                since_write = 0.0
        if since_write >= KEEPALIVE:
            await out.write(b": keep-alive\n\n")
            since_write = 0.0
