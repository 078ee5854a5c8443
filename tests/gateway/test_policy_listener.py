"""gateway/policy_listener.py against a real Postgres: a start is not a policy change; a reconnect is."""

from __future__ import annotations

import asyncio

import asyncpg

from gateway.policy_listener import listen
from shared.authzen import POLICY_CHANNEL
from shared.runtime import cancel_and_wait

LISTENERS = f"FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN \"{POLICY_CHANNEL}\"'"


async def connects(pool: asyncpg.Pool, cached: int) -> tuple[list[str | None], asyncio.Task[None], asyncio.Queue[int]]:
    """Start `listen`; return the flushes it asked for, its task, and a queue fed at every connect."""
    changes: list[str | None] = []
    connected: asyncio.Queue[int] = asyncio.Queue()

    def count() -> int:
        connected.put_nowait(cached)
        return cached

    task = asyncio.create_task(listen(pool, changes.append, count))
    return changes, task, connected


async def test_first_connect_with_an_empty_cache_is_not_a_policy_change_but_a_reconnect_is(pg_pool) -> None:
    changes, task, connected = await connects(pg_pool, cached=0)
    try:
        await asyncio.wait_for(connected.get(), 10)
        assert changes == []  # nothing cached, nothing announced: no flush, no "policy change" log line
        await pg_pool.execute(f"SELECT pg_terminate_backend(pid) {LISTENERS}")
        await asyncio.wait_for(connected.get(), 10)
        assert changes == [None]  # notifications may have been lost while it was down
    finally:
        await cancel_and_wait(task)


async def test_first_connect_flushes_answers_cached_before_it(pg_pool) -> None:
    changes, task, connected = await connects(pg_pool, cached=3)
    try:
        await asyncio.wait_for(connected.get(), 10)
        assert changes == [None]
    finally:
        await cancel_and_wait(task)
