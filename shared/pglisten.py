"""LISTEN on a Postgres channel for as long as the caller wants, reconnecting when the link drops.

One dedicated connection per listener (from a pool or by DSN). Notifications sent while no
connection was listening are lost, so `on_connect` runs after every (re)connect, once LISTEN is in
place: callers reload or flush there, and nothing can fall between their reload and the LISTEN.
A server-side close (failover, pg_terminate_backend) wakes the loop at once through a termination
listener; a half-open TCP connection shows only when used, hence a periodic no-op LISTEN.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)

OnNotify = Callable[[str], None]
OnConnect = Callable[[asyncpg.Connection], Awaitable[None]]


def _quote(channel: str) -> str:
    return '"' + channel.replace('"', '""') + '"'


@contextlib.asynccontextmanager
async def _connection(source: asyncpg.Pool | str) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(source, str):
        conn = await asyncpg.connect(source)
        try:
            yield conn
        finally:
            if not conn.is_closed():
                try:
                    async with asyncio.timeout(5.0):
                        await conn.close()
                except (Exception, asyncio.CancelledError):
                    conn.terminate()  # a link that cannot close politely is dropped, never awaited forever
                    raise
    else:
        async with source.acquire() as conn:
            yield conn


async def _hold(
    conn: asyncpg.Connection, channel: str, on_notify: OnNotify, on_connect: OnConnect | None, check_every: float
) -> None:
    """LISTEN on `conn` until it closes (raises ConnectionError) or the task is cancelled."""
    wake = asyncio.Event()

    def closed(_conn: object) -> None:
        wake.set()

    def notified(_conn: object, _pid: int, _channel: str, payload: object) -> None:
        on_notify(str(payload))

    conn.add_termination_listener(closed)
    await conn.add_listener(channel, notified)
    try:
        if on_connect is not None:
            await on_connect(conn)
        log.info("listening", extra={"channel": channel})
        while not conn.is_closed():
            try:
                async with asyncio.timeout(check_every):
                    await wake.wait()
            except TimeoutError:
                # LISTEN again is a no-op round trip, and pg_stat_activity keeps showing what we wait on.
                await conn.execute(f"LISTEN {_quote(channel)}")
        raise ConnectionError("LISTEN connection closed")
    finally:
        # Before the connection goes back: a pool connection released with a listener makes asyncpg
        # warn, and under warnings-as-errors that broke cancellation and hung shutdown.
        conn.remove_termination_listener(closed)
        if not conn.is_closed():
            try:
                # remove_listener drops the callback before sending UNLISTEN, so a timeout here
                # still leaves no listener behind; the unanswered connection is then discarded.
                async with asyncio.timeout(check_every):
                    await conn.remove_listener(channel, notified)
            except Exception:  # noqa: BLE001 - the connection is unusable; the pool replaces it
                conn.terminate()


async def listen_forever(
    source: asyncpg.Pool | str,
    channel: str,
    on_notify: OnNotify,
    *,
    on_connect: OnConnect | None = None,
    retry: float = 1.0,
    check_every: float = 5.0,
) -> None:
    """LISTEN on `channel` until cancelled: `on_notify(payload)` per notification, `on_connect` per (re)connect."""
    while True:
        try:
            async with _connection(source) as conn:
                await _hold(conn, channel, on_notify, on_connect, check_every)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure means reconnect, never stop listening
            log.warning("LISTEN connection lost; reconnecting", extra={"channel": channel, "error": type(exc).__name__})
        await asyncio.sleep(retry)
