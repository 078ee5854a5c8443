"""Resource subscriptions on `/mcp`: who follows which backend URI, and delivery to their streams.

A subscriber is a 2025-era session (on this replica until unsubscribe, DELETE or expiry; delivered
on its GET streams) or one `subscriptions/listen` stream. Per backend, the union of subscribed
URIs drives one `ResourceFeed` (gateway/upstream/notify.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.mcp import catalog
from gateway.mcp.listen import notification
from gateway.mcp.protocol import RequestId
from gateway.upstream.client import BackendClient
from gateway.upstream.notify import ResourceFeed

Subscriber = tuple[str, str]  # (subject, session id or listen-stream id)
Wanted = tuple[str, str]  # (server, backend URI)
UPDATED = "notifications/resources/updated"


def uris_by_server(subs: Mapping[Subscriber, Iterable[Wanted]]) -> dict[str, set[str]]:
    """Every backend's URIs wanted by at least one subscriber."""
    out: dict[str, set[str]] = {}
    for wanted in subs.values():
        for server, uri in wanted:
            out.setdefault(server, set()).add(uri)
    return out


def recipients(subs: Mapping[Subscriber, Iterable[Wanted]], server: str, uri: str) -> list[Subscriber]:
    """The subscribers of one backend URI."""
    return [key for key, wanted in subs.items() if (server, uri) in wanted]


def updated(server: str, uri: str, subscription: RequestId = None) -> dict[str, Any]:
    """The agent-facing notification: the URI renamed, tagged with the listen id on a 2026 stream."""
    return notification(UPDATED, subscription, uri=catalog.wrap_uri(server, uri))


class Hub:
    """Subscriptions of this replica, the streams delivering them, and one feed per backend."""

    def __init__(self) -> None:
        self.subs: dict[Subscriber, set[Wanted]] = {}
        self._expires: dict[Subscriber, float] = {}
        self._sinks: dict[Subscriber, set[asyncio.Queue[tuple[str, str]]]] = {}
        self._feeds: dict[str, ResourceFeed] = {}

    async def subscribe(self, key: Subscriber, client: BackendClient, uris: Iterable[str],
                        expires: float = float("inf")) -> None:
        """Add URIs of one backend; returns once the backend follows them (TimeoutError otherwise)."""
        self._prune()
        self.subs.setdefault(key, set()).update((client.server.name, u) for u in uris)
        self._expires[key] = expires
        feed = self._feeds.get(client.server.name)
        if feed is None or feed.client is not client:
            if feed is not None:
                await feed.close()
            feed = self._feeds[client.server.name] = ResourceFeed(client, self._deliver)
        gen = feed.want(uris_by_server(self.subs).get(client.server.name, set()))
        await feed.synced(gen, client.server.timeout)

    async def unsubscribe(self, key: Subscriber, server: str, uri: str) -> None:
        """Drop one URI of one subscriber (the backend is unsubscribed when nobody else wants it)."""
        wanted = self.subs.get(key)
        if wanted is not None:
            wanted.discard((server, uri))
            if not wanted:
                self.subs.pop(key, None)
        await self._refresh()

    async def drop(self, key: Subscriber) -> None:
        """Forget a subscriber entirely (session DELETEd, listen stream closed)."""
        self.subs.pop(key, None)
        self._expires.pop(key, None)
        await self._refresh()

    def attach(self, key: Subscriber) -> asyncio.Queue[tuple[str, str]]:
        """A queue receiving (server, uri) for the subscriber's updates while a stream is open."""
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue(maxsize=1000)
        self._sinks.setdefault(key, set()).add(queue)
        return queue

    def detach(self, key: Subscriber, queue: asyncio.Queue[tuple[str, str]]) -> None:
        """The stream behind `queue` closed."""
        sinks = self._sinks.get(key)
        if sinks is not None:
            sinks.discard(queue)
            if not sinks:
                self._sinks.pop(key, None)

    async def close(self) -> None:
        """Stop every feed (app shutdown)."""
        feeds, self._feeds = list(self._feeds.values()), {}
        for feed in feeds:
            await feed.close()

    def _deliver(self, server: str, uri: str) -> None:
        for key in recipients(self.subs, server, uri):
            for queue in self._sinks.get(key, ()):
                if not queue.full():  # a stalled client loses updates rather than growing memory
                    queue.put_nowait((server, uri))

    def _prune(self) -> None:
        now = time.time()
        for key in [k for k, t in self._expires.items() if t <= now]:
            self.subs.pop(key, None)
            self._expires.pop(key, None)

    async def _refresh(self) -> None:
        self._prune()
        wanted = uris_by_server(self.subs)
        for server, feed in list(self._feeds.items()):
            uris = wanted.get(server, set())
            if uris:
                feed.want(uris)
            else:  # the last subscriber went: close the stream (and the backend's subscriptions)
                self._feeds.pop(server, None)
                await feed.stop(feed.client.server.timeout)

