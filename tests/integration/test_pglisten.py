"""shared.pglisten against a real Postgres: delivery, reconnect after the server kills the link, clean cancel."""

from __future__ import annotations

import asyncio
import socket
import warnings

import asyncpg
import pytest

from shared import pglisten
from tests.integration.pdp_helpers import eventually

CHANNEL = "mcpgw_test_channel"


class Recorder:
    """Collects payloads and the server pid of every connection the helper listened on."""

    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.pids: list[int] = []

    def on_notify(self, payload: str) -> None:
        self.payloads.append(payload)

    async def on_connect(self, conn: asyncpg.Connection) -> None:
        self.pids.append(conn.get_server_pid())


async def notify_until_heard(admin: asyncpg.Connection, rec: Recorder, payload: str) -> None:
    """NOTIFY until `payload` arrives (a notification sent between reconnects is lost by design)."""

    async def heard() -> bool:
        if payload not in rec.payloads:
            await admin.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        return payload in rec.payloads

    await eventually(heard, within=5.0, interval=0.05)


async def listening(admin: asyncpg.Connection) -> int:
    return int(await admin.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN%'"))


@pytest.mark.parametrize("by_dsn", [False, True], ids=["pool", "dsn"])
async def test_reconnects_after_terminate_and_cancels_cleanly(pg_dsn: str, by_dsn: bool) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    admin = await asyncpg.connect(pg_dsn)
    rec = Recorder()
    # check_every is long: only the termination listener can notice the kill within the test's time.
    task = asyncio.create_task(pglisten.listen_forever(
        pg_dsn if by_dsn else pool, CHANNEL, rec.on_notify, on_connect=rec.on_connect, retry=0.05, check_every=60))
    try:
        await notify_until_heard(admin, rec, "one")
        assert len(rec.pids) == 1
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", rec.pids[0])

        async def reconnected() -> bool:
            return len(rec.pids) == 2

        await eventually(reconnected, within=3.0)
        assert rec.pids[1] != rec.pids[0]
        await notify_until_heard(admin, rec, "two")
        assert rec.payloads.count("two") == 1 and await listening(admin) == 1
    finally:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.wait_for(pool.close(), 5)
        await admin.close()
    assert task.cancelled()
    assert [str(w.message) for w in caught] == []  # e.g. "released to the pool but has 1 active listener"


async def test_listener_is_gone_after_cancel(pg_dsn: str) -> None:
    pool = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=1)
    admin = await asyncpg.connect(pg_dsn)
    rec = Recorder()
    task = asyncio.create_task(pglisten.listen_forever(pool, CHANNEL, rec.on_notify, on_connect=rec.on_connect))
    try:
        await notify_until_heard(admin, rec, "x")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # The pool's only connection is back and no longer listens: a NOTIFY now reaches nobody.
        async with pool.acquire() as conn:
            assert conn.get_server_pid() == rec.pids[0]
            assert await conn.fetchval("SELECT count(*) FROM pg_listening_channels()") == 0
    finally:
        await pool.close()
        await admin.close()


async def test_unreachable_database_keeps_retrying_until_cancelled() -> None:
    rec = Recorder()
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bad = f"postgresql://nobody@127.0.0.1:{port}/nothing"
    task = asyncio.create_task(pglisten.listen_forever(bad, CHANNEL, rec.on_notify, on_connect=rec.on_connect,
                                                       retry=0.02))
    await asyncio.sleep(0.3)
    assert not task.done() and rec.pids == []  # failures are retried, never raised out of the loop
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


async def test_on_connect_failure_is_a_reconnect(pg_dsn: str) -> None:
    rec = Recorder()
    calls = 0

    async def flaky(conn: asyncpg.Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("reload failed")
        await rec.on_connect(conn)

    admin = await asyncpg.connect(pg_dsn)
    task = asyncio.create_task(pglisten.listen_forever(pg_dsn, CHANNEL, rec.on_notify, on_connect=flaky, retry=0.02))
    try:
        await notify_until_heard(admin, rec, "after")
        assert calls == 2 and len(rec.pids) == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await admin.close()
