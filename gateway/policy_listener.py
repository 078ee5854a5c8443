"""Flush the PEP's decision cache the moment the PDP activates a policy (Postgres LISTEN).

The PDP calls pg_notify on `pdp.store.CHANNEL` inside the activating transaction, with the version
number as payload; Postgres delivers it at commit. A gateway sharing the database listens on one
connection of its own and flushes at once, instead of serving cached decisions for up to
`decision_cache_ttl`. The connection is re-acquired when it drops, and every (re)connect flushes,
because notifications sent while it was down are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import asyncpg
from aiohttp import web

from gateway.keys import POLICY
from pdp.store import CHANNEL, version_label
from shared.keys import DB_POOL

log = logging.getLogger(__name__)

OnChange = Callable[[str | None], None]


def version_from_payload(payload: str) -> str | None:
    """The policy_version a notification announces ("v7" for "7"); None when it names none."""
    text = payload.strip()
    return version_label(int(text)) if text.isdigit() else None


async def listen(pool: asyncpg.Pool, on_change: OnChange, *, retry: float = 1.0, check_every: float = 5.0) -> None:
    """Hold one pool connection with LISTEN; call `on_change` per notification and per (re)connect."""
    while True:
        try:
            async with pool.acquire() as conn:
                wake = asyncio.Event()

                def closed(*_: object, w: asyncio.Event = wake) -> None:
                    w.set()

                def notified(_c: object, _pid: int, _ch: str, payload: str) -> None:
                    on_change(version_from_payload(payload))

                conn.add_termination_listener(closed)
                await conn.add_listener(CHANNEL, notified)
                try:
                    on_change(None)  # anything announced while we were not listening
                    log.info("listening for policy changes", extra={"channel": CHANNEL})
                    while not conn.is_closed():
                        try:
                            # A half-open TCP connection shows up only when we use it.
                            await asyncio.wait_for(wake.wait(), timeout=check_every)
                        except TimeoutError:
                            await conn.execute("SELECT 1")
                    raise ConnectionError("LISTEN connection closed")
                finally:
                    # The pool warns about (and keeps) listeners on a released connection.
                    conn.remove_termination_listener(closed)
                    if not conn.is_closed():
                        with contextlib.suppress(Exception):
                            await conn.remove_listener(CHANNEL, notified)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means reconnect, never stop listening
            log.warning("policy-change listener lost its connection; reconnecting", extra={"error": type(exc).__name__})
        await asyncio.sleep(retry)


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
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
