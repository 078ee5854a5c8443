"""Flush the PEP's decision cache the moment the PDP activates a policy (Postgres LISTEN on
`shared.authzen.POLICY_CHANNEL`, the version as payload), not up to `decision_cache_ttl` later.
Every (re)connect flushes too: notifications sent while the connection was down are lost.
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


async def listen(pool: asyncpg.Pool, on_change: OnChange) -> None:
    """Hold one pool connection with LISTEN; call `on_change` per notification and per (re)connect."""

    async def connected(_conn: asyncpg.Connection) -> None:
        on_change(None)  # anything announced while we were not listening

    await pglisten.listen_forever(pool, CHANNEL, lambda payload: on_change(version_from_payload(payload)),
                                  on_connect=connected)


async def policy_listener_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run `listen` for the app's lifetime when it has a database pool."""
    pool = app.get(DB_POOL)
    if pool is None:
        yield
        return
    task = asyncio.create_task(listen(pool, app[POLICY].policy_changed))
    try:
        yield
    finally:
        await cancel_and_wait(task)  # listen never ends by itself: it reconnects on any failure
