"""Aggregated change notifications on `/mcp`: the 2025 GET stream and 2026-07-28 `subscriptions/listen`.

The watcher re-reads the caller's own filtered tool catalog every POLL_SECONDS (backends' lists
uncached, one PDP search) and sends `notifications/tools/list_changed` when it differs from the
last one: a change on any permitted backend, a backend added or removed, or a policy change that
shows or hides a tool. Polling rather than listening to each backend keeps it era-independent
and policy-aware (a backend's own notification could leak a tool the caller may not see).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from gateway.mcp import sse
from shared.jsonutil import dumps, dumps_str

POLL_SECONDS = 10.0
KEEPALIVE = 15.0
TICK = 0.05
SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"
CHANGED = "notifications/tools/list_changed"

Snapshot = Callable[[], Awaitable[list[dict[str, Any]]]]


def fingerprint(tools: list[dict[str, Any]]) -> str:
    """A digest of a tool catalog; equal catalogs give equal digests whatever the order."""
    return hashlib.sha256(dumps(sorted(tools, key=lambda t: str(t.get("name"))))).hexdigest()


def notification(method: str, subscription: Any = None) -> dict[str, Any]:
    """One change notification (tagged with the listen request's id on a 2026-07-28 stream)."""
    msg: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if subscription is not None:
        msg["params"] = {"_meta": {SUBSCRIPTION_ID: subscription}}
    return msg


async def watch(request: web.Request, out: web.StreamResponse, snapshot: Snapshot, subscription: Any = None) -> None:
    """Until the client leaves: keep-alives, and a notification whenever the catalog changes."""
    last = fingerprint(await snapshot())
    since_poll = since_write = 0.0
    # aiohttp does not cancel a handler when its client leaves: watch the transport.
    while request.transport is not None and not request.transport.is_closing():
        await asyncio.sleep(TICK)
        since_poll += TICK
        since_write += TICK
        if since_poll >= POLL_SECONDS:
            since_poll = 0.0
            current = fingerprint(await snapshot())
            if current != last:
                last = current
                await out.write(sse.encode(dumps_str(notification(CHANGED, subscription))))
                since_write = 0.0
        if since_write >= KEEPALIVE:
            await out.write(b": keep-alive\n\n")
            since_write = 0.0
