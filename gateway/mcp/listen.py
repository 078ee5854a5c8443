"""Aggregated change notifications on `/mcp`: the 2025 GET stream and 2026-07-28 `subscriptions/listen`.

Backends' lists are polled every POLL_SECONDS by one shared poller for all streams
(catalog_watch.py, only the kinds each backend advertises). A stream re-reads the caller's own
filtered catalogs (one PDP search per kind, shared by the subject's streams) when the poller's
stamp moves — a change on any backend, a backend added or removed, or the re-filter period that
catches policy changes — and sends the kind's `notifications/*/list_changed` when the caller's view
differs from the last one. Polling rather than relaying each backend's own notifications keeps it
era-independent and policy-aware (a backend's notification could leak an item the caller may not see).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

from gateway.mcp.protocol import RequestId
from gateway.upstream import sse
from shared.jsonutil import dumps

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
