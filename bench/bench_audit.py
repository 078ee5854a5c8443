"""Audit ingest benchmark: sustained events/second from `emit()` into PostgreSQL, 0 lost.

Runs against an embedded PostgreSQL under .data/bench (or DATABASE_URL), in a fresh database.
Prints: end-to-end ingest rate, emit() cost, and the fast COPY path against the idempotent
staging path (used for spool replay) measured in the same run.

    .venv/bin/python bench/bench_audit.py            # 200k events
    .venv/bin/python bench/bench_audit.py --quick    # 20k events
    BENCH_AUDIT_BATCH=10000 .venv/bin/python bench/bench_audit.py   # another COPY batch size
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared import db  # noqa: E402
from shared.audit import (  # noqa: E402
    AuditEmitter,
    AuditEvent,
    pgwrite,  # noqa: E402
)
from shared.audit.metrics import AuditMetrics  # noqa: E402
from tests.fixtures.pg import create_database, drop_database  # noqa: E402

BATCH = int(os.environ.get("BENCH_AUDIT_BATCH", "2000"))


def event(i: int) -> AuditEvent:
    """A realistic gateway event: tool call with arguments (one of them a secret)."""
    return AuditEvent(
        "mcp_request", "gateway", subject=f"user{i % 500}@example.com", action="invoke_tool",
        mcp_server="github", tool="create_issue", resource="mcp:github:create_issue",
        decision="allow", status="success", http_status=200, duration_ms=3.2,
        roles=["developer"], request_id=f"req-{i}", decision_id=f"dec-{i}", policy_version="v7",
        parameters={"repo": "acme/api", "title": f"issue {i}", "labels": ["bug"], "token": "x" * 20},
        client_addr="10.1.2.3",
    )


async def ingest(pool: asyncpg.Pool, n: int, spool: Path) -> tuple[float, float, int]:
    """(events/s end to end, µs per emit, rows in table) for n events through the emitter."""
    emitter = AuditEmitter("gateway", pool_getter=lambda: pool, spool_dir=spool, queue_size=100_000, batch_size=BATCH)
    await emitter.start()
    events = [event(i) for i in range(n)]
    emit_time = 0.0
    start = time.perf_counter()
    for offset in range(0, n, 1000):
        t = time.perf_counter()
        for e in events[offset : offset + 1000]:
            emitter.emit(e)
        emit_time += time.perf_counter() - t
        await asyncio.sleep(0)  # a server yields between requests; so does this producer
    # close() drains the queue and replays anything that overflowed into the spool: the clock
    # stops only when every event is in the table.
    await emitter.close()
    elapsed = time.perf_counter() - start
    spilled = AuditMetrics.value(emitter.metrics.spilled)
    print(f"  (overflowed to spool and replayed: {spilled:.0f})")
    rows = await pool.fetchval("SELECT count(DISTINCT event_id) FROM audit_events")
    assert AuditMetrics.value(emitter.metrics.dropped) == 0
    return n / elapsed, emit_time / n * 1e6, rows


async def paths(pool: asyncpg.Pool, n: int, batch: int) -> tuple[float, float]:
    """(fast COPY rows/s, idempotent staging rows/s) on fresh events, batch by batch."""
    rates = []
    for idempotent in (False, True):
        events = [event(i).replace(event_id=uuid.uuid4()) for i in range(n)]
        start = time.perf_counter()
        for offset in range(0, n, batch):
            await pgwrite.write(pool, events[offset : offset + batch], idempotent=idempotent)
        rates.append(n / (time.perf_counter() - start))
    return rates[0], rates[1]


async def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20k events instead of 200k")
    args = parser.parse_args()
    n = 20_000 if args.quick else 200_000
    server = os.environ.get("DATABASE_URL") or await asyncio.to_thread(db.start_embedded, ROOT / ".data" / "bench")
    name = "bench_" + uuid.uuid4().hex[:8]
    dsn = await create_database(server, name)
    try:
        pool = await db.create_pool(dsn, max_size=4)
        await db.apply_migrations(pool)
        with tempfile.TemporaryDirectory() as spool:
            rate, per_emit, rows = await ingest(pool, n, Path(spool))
        print(f"audit ingest: {n} events, {rate:,.0f} events/s end to end, emit() {per_emit:.1f} µs/event")
        print(f"rows in table (distinct event_id): {rows}  lost: {n - rows}")
        await pool.execute("TRUNCATE audit_events")
        fast, idem = await paths(pool, n // 2, 2_000)
        print(f"write paths ({n // 2} events, batches of 2000): COPY {fast:,.0f} rows/s, "
              f"staging+ON CONFLICT {idem:,.0f} rows/s, ratio {fast / idem:.2f}x")
        await pool.close()
        if rows != n:
            raise SystemExit("events were lost")
    finally:
        await drop_database(server, name)


if __name__ == "__main__":
    asyncio.run(main())
