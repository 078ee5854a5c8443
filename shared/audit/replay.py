"""Bringing spooled audit events back into Postgres once it answers again (idempotently).

The emitter spills a batch here when Postgres is unreachable or refuses it; `run` waits for
`pending`, backs off while the database is down, and replays segment by segment: a chunk that is
refused is retried row by row, a refused row stored quarantined, a row still refused set aside.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import asyncpg

from shared.audit import pgwrite
from shared.audit.event import AuditEvent
from shared.audit.metrics import AuditMetrics
from shared.audit.sanitize import quarantine
from shared.audit.spool import Spool

log = logging.getLogger("shared.audit.emitter")
MAX_BACKOFF = 5.0


class Replayer:
    """The spool's way back to Postgres, and whether Postgres is believed reachable."""

    def __init__(self, spool: Spool, pool: Callable[[], asyncpg.Pool], metrics: AuditMetrics,
                 batch_size: int, retry_base: float) -> None:
        self.spool = spool
        self._pool = pool
        self.metrics = metrics
        self._batch_size = batch_size
        self._retry_base = retry_base
        self.healthy = True  # False while Postgres is believed unreachable (events go to the spool)
        self.pending = asyncio.Event()  # set when the spool has something to bring back
        # One replay at a time: `replay_all` (tests, CLI, shutdown) waits for the running round
        # instead of skipping the segment that round holds and returning before it is stored.
        self._lock = asyncio.Lock()
        if spool.has_pending():
            self.pending.set()

    def spill(self, events: list[AuditEvent]) -> None:
        """Keep `events` in the spool for a later replay (counted lost if the disk refuses)."""
        try:
            self.spool.append(events)
        except OSError as exc:
            self.metrics.dropped.inc(len(events))
            log.error(
                "AUDIT EVENTS LOST: spool write failed",
                extra={"count": len(events), "spool": str(self.spool.directory), "error": repr(exc)},
            )
            return
        self.metrics.spilled.inc(len(events))
        self.pending.set()

    async def run(self) -> None:
        """Replay whenever something is pending, backing off while the database is down."""
        delay = self._retry_base
        while True:
            await self.pending.wait()
            if not self.healthy:
                await asyncio.sleep(delay)
            try:
                await self.replay_all()
            except Exception as exc:
                if pgwrite.is_unavailable(exc):
                    self.healthy = False  # the next attempt waits `delay` first
                else:
                    # Not the database (e.g. an unreadable spool file): keep writing directly,
                    # retry the spool later rather than in a tight loop.
                    log.error("audit replay failed", extra={"error": repr(exc)})
                    self.pending.set()
                    await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)
                continue
            delay = self._retry_base

    async def replay_all(self) -> None:
        """Replay every spool segment now (one round at a time)."""
        async with self._lock:
            await self._replay_segments()

    async def _replay_segments(self) -> None:
        pool = self._pool()
        self.pending.clear()
        self.spool.rotate()
        for path in self.spool.segments():
            unreadable = self.spool.unreadable
            with self.spool.claim(path) as events:
                self.metrics.dropped.inc(self.spool.unreadable - unreadable)
                if events is None:
                    continue
                for start in range(0, len(events), self._batch_size):
                    chunk = events[start : start + self._batch_size]
                    added = await self._replay_chunk(pool, chunk, path)
                    self.metrics.replayed.inc(added)
                path.unlink()
        self.healthy = True

    async def _replay_chunk(self, pool: asyncpg.Pool, chunk: list[AuditEvent], path: Path) -> int:
        try:
            added = await pgwrite.write(pool, chunk, idempotent=True)
            self.metrics.batches.labels("idempotent").inc()
            return added
        except Exception as exc:
            if pgwrite.is_unavailable(exc):
                self.pending.set()
                raise
        # Bad data somewhere in the chunk: row by row, so only the bad row is affected.
        added = 0
        for event in chunk:
            added += await self._store_one(pool, event, path)
        return added

    async def _store_one(self, pool: asyncpg.Pool, event: AuditEvent, path: Path) -> int:
        """Store one event; if refused, its quarantined (marked) form; else set it aside, counted."""
        try:
            return await pgwrite.write(pool, [event], idempotent=True)
        except Exception as exc:
            if pgwrite.is_unavailable(exc):
                self.pending.set()
                raise
            refusal = repr(exc)
        try:
            added = await pgwrite.write(pool, [quarantine(event, f"refused by the database: {refusal}")], idempotent=True)
        except Exception as exc:
            if pgwrite.is_unavailable(exc):
                self.pending.set()
                raise
            target = self.spool.reject([event], path)
            self.metrics.dropped.inc()
            log.error("audit event rejected by the database", extra={"event_id": str(event.event_id), "kept_in": str(target), "error": refusal})
            return 0
        log.error("audit event refused by the database; stored quarantined", extra={"event_id": str(event.event_id), "error": refusal})
        return added
