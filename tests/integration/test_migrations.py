"""Migrations apply on an empty database, then again as a no-op, also when started concurrently."""

import asyncio

from shared import db


async def test_migrations_apply_then_noop(pg_dsn):
    pool = await db.create_pool(pg_dsn)
    try:
        first = await db.apply_migrations(pool)
        assert first == [p.stem for p in db.migration_files()]
        assert await db.apply_migrations(pool) == []
        cols = await pool.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name='audit_events'"
        )
        assert {"event_id", "decision_id", "parameters", "extra"} <= {c["column_name"] for c in cols}
    finally:
        await pool.close()


async def test_concurrent_migrations_apply_once(pg_dsn):
    pools = [await db.create_pool(pg_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(db.apply_migrations(p) for p in pools))
        assert sorted(len(r) for r in results) == [0, 0, len(db.migration_files())]
    finally:
        for p in pools:
            await p.close()
