"""Flush the PEP's decision cache the moment the PDP activates a policy (Postgres LISTEN on
`shared.authzen.POLICY_CHANNEL`, the version as payload), not up to `decision_cache_ttl` later.
Every reconnect flushes too: notifications sent while the connection was down are lost (the first
connect only when answers were cached before it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from gateway.keys import POLICY
from shared import pglisten
from shared.authzen import POLICY_CHANNEL as CHANNEL
from shared.authzen import version_label
from shared.keys import DB_POOL
from shared.runtime import cancel_and_wait

OnChange = Callable[[str | None], None]


def version_from_payload(payload: str) -> str | None:
    """The policy_version a notification announces ("v7" for "7"); None when it names none."""
    text = payload.strip()
    return version_label(int(text)) if text.isdigit() else None


async def listen(pool: asyncpg.Pool, on_change: OnChange, cached: Callable[[], int] = lambda: 1) -> None:
    """Hold one pool connection with LISTEN; call `on_change` per notification and per reconnect.

    The first connect flushes only when answers were cached before it (`cached()` > 0): a start is not
    a policy change, and an empty cache has nothing stale to flush.
    """
    first = True

    async def connected(_conn: asyncpg.Connection) -> None:
        nonlocal first
        if cached() or not first:
            on_change(None)  # anything announced while we were not listening
        first = False

    await pglisten.listen_forever(pool, CHANNEL, lambda payload: on_change(version_from_payload(payload)),
                                  on_connect=connected)


async def policy_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run `listen` for the app's lifetime when it has a database pool."""
    pool = app.get(DB_POOL)
    if pool is None:
        yield
        return
    pep = app[POLICY]
    task = asyncio.create_task(listen(pool, pep.policy_changed, lambda: len(pep.cache)))
    try:
        yield
    finally:
        await cancel_and_wait(task)  # listen never ends by itself: it reconnects on any failure
