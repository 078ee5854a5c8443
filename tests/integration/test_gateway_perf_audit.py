"""Audit writer batching at low load (gateway hot-path work): trickled events share one COPY."""

from __future__ import annotations

import asyncio

from shared.audit import AuditEmitter, AuditEvent
from shared.audit.metrics import AuditMetrics


def event(i: int) -> AuditEvent:
    return AuditEvent("mcp_request", "gateway", subject=f"u{i}", tool="echo", status="success")


async def test_trickled_events_share_one_copy_and_flush_does_not_wait_the_linger(pg_pool, tmp_path):
    # A long linger: without it, each event emitted one loop turn apart was its own COPY.
    emitter = AuditEmitter("gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path, flush_interval=30)
    await emitter.start()
    try:
        for i in range(10):
            emitter.emit(event(i))
            await asyncio.sleep(0.005)  # the writer runs between emits, as between requests
        async with asyncio.timeout(10):  # flush() wakes the writer instead of waiting 30 s
            await emitter.flush()
        assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == 10
        assert AuditMetrics.value(emitter.metrics.batches, path="copy") == 1
    finally:
        async with asyncio.timeout(10):  # close() does not wait the linger either
            await emitter.close()


async def test_a_full_batch_is_written_without_waiting_the_linger(pg_pool, tmp_path):
    emitter = AuditEmitter(
        "gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path, flush_interval=30, batch_size=5
    )
    await emitter.start()
    try:
        for i in range(5):
            emitter.emit(event(i))
        async with asyncio.timeout(10):
            while await pg_pool.fetchval("SELECT count(*) FROM audit_events") < 5:  # noqa: ASYNC110 - the table is what we observe
                await asyncio.sleep(0.01)
    finally:
        await emitter.close()


async def test_a_backlog_drains_without_lingering_between_batches(pg_pool, tmp_path):
    """Batches after the first must not wait the linger while events are waiting: draining 50
    batches at one batch per linger would take 25 minutes here (bounded below to catch it)."""
    emitter = AuditEmitter(
        "gateway", pool_getter=lambda: pg_pool, spool_dir=tmp_path, flush_interval=30, batch_size=20
    )
    await emitter.start()
    for i in range(1_000):
        emitter.emit(event(i))
    # A partial batch is left at the end, and flush()'s wake-up is consumed by the first batch.
    emitter.emit(event(1_000))
    try:
        async with asyncio.timeout(20):
            await emitter.flush()
        assert await pg_pool.fetchval("SELECT count(*) FROM audit_events") == 1_001
    finally:
        async with asyncio.timeout(20):
            await emitter.close()
