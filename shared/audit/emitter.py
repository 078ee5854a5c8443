"""The audit emitter: synchronous `emit`, a bounded queue, a background writer and a replayer.

The queue is a plain deque with its bound checked by `_enqueue`: asyncio.Queue cost ~10 Python
calls per event (put, its full/size checks, waking getters, get, task_done). The writer is woken
by one Event, set only when it waits for a first event; `flush` waits on counts of events
enqueued and handled.

Request handlers call `emit(event)`; it redacts, enqueues and returns without awaiting anything.
A writer task drains the queue in batches: local sinks first, then one COPY per batch into
Postgres. When Postgres is unreachable the batch goes to the fsync'd spool instead, and a replayer
task brings spooled events back (idempotently) once the database answers again. A full queue also
spills to the spool, so events are only ever dropped when the local disk itself fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from time import time_ns
from typing import IO, Any

import asyncpg
from prometheus_client import CollectorRegistry

from shared.audit import pgwrite
from shared.audit.event import AuditEvent
from shared.audit.metrics import AuditMetrics
from shared.audit.replay import Replayer
from shared.audit.sanitize import quarantine, sanitize_event
from shared.audit.sinks import FileSink, LocalSink, StdoutSink
from shared.audit.spool import Spool
from shared.common_settings import DEFAULT_REDACT_KEYS
from shared.redact import normalize_keys
from shared.tracing import INTERNAL, child_tail, current_span

log = logging.getLogger(__name__)

PoolGetter = Callable[[], asyncpg.Pool | None]
_STOP = object()
_SPAN_TAILS: dict[str, str] = {}  # event type → its audit.emit span's rendered tail (tracing.child_tail)


class DatabaseMissing(ConnectionError):
    """No pool yet (or any more): treated like an unreachable database."""


def redact_event(event: AuditEvent, keys: frozenset[str], *, owned: bool = False) -> AuditEvent:
    """The event redacted and made storable (see shared/audit/sanitize.py); never raises.

    `owned`: `event` was built for this call and nobody else holds it, so it may be changed in place."""
    try:
        return sanitize_event(event, keys, in_place=owned)
    except Exception as exc:  # noqa: BLE001 - an event is kept (marked), never lost to a bug here
        log.exception("audit event could not be sanitised; stored quarantined", extra={"event_id": str(event.event_id)})
        return quarantine(event, f"could not be sanitised: {type(exc).__name__}")


class AuditEmitter:
    """Fan audit events out to the configured sinks without blocking the caller."""

    def __init__(
        self,
        service: str,
        *,
        pool_getter: PoolGetter | None = None,
        spool_dir: Path | None = None,
        file: Path | None = None,
        stdout: bool = False,
        stream: IO[str] | None = None,
        redact_keys: Iterable[str] = DEFAULT_REDACT_KEYS,
        queue_size: int = 100_000,
        batch_size: int = 2_000,
        flush_interval: float = 0.2,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if pool_getter is not None and spool_dir is None:
            raise ValueError("a Postgres sink needs a spool_dir for outages")
        self.service = service
        self._pool_getter = pool_getter
        self._keys = normalize_keys(redact_keys)
        self._queue: deque[Any] = deque()
        self._queue_size = queue_size
        self._idle = False  # the writer waits for a first event on `_arrived`
        self._arrived = asyncio.Event()
        self._enqueued = 0  # events put in the queue, ever
        self._handled = 0  # of those, events the writer is done with
        self._flushes: list[tuple[int, asyncio.Future[None]]] = []  # (enqueued count, waiter)
        self._batch_size = batch_size
        # The writer lingers this long after the first event of a batch: one COPY per event (at
        # low load the queue is nearly always empty) cost the gateway a database round trip,
        # several socket writes and the pool's reset query per request (docs/benchmarks.md).
        self._linger = flush_interval
        self._wake = asyncio.Event()
        self._flushing = 0  # flush() callers waiting: no lingering until they are served
        self.metrics = AuditMetrics(registry or CollectorRegistry(), self._queue.__len__)
        self._replay = (Replayer(Spool(spool_dir, service), self._pool, self.metrics, batch_size, flush_interval)
                        if spool_dir is not None else None)
        # Local sinks open here, not in start(): an event emitted before start is written through.
        self._sinks: list[LocalSink] = []
        if file is not None:
            self._sinks.append(FileSink(file))
        if stdout:
            self._sinks.append(StdoutSink(stream))
        self._tasks: list[asyncio.Task[None]] = []
        self._running = False
        self._overflow: list[AuditEvent] = []

    @property
    def healthy(self) -> bool:
        """False while Postgres is believed unreachable (events go to the spool)."""
        return self._replay is None or self._replay.healthy

    async def start(self) -> None:
        """Start the writer (and the replayer, when Postgres is a sink)."""
        self._tasks.append(asyncio.create_task(self._writer(), name="audit-writer"))
        if self._replay is not None:
            self._tasks.append(asyncio.create_task(self._replay.run(), name="audit-replayer"))
        self._running = True

    def emit(self, event: AuditEvent, *, owned: bool = False) -> None:
        """Redact, make storable, enqueue; never awaits. A full queue spills to the spool instead.

        `owned=True` hands the event over (the caller built it for this emit and keeps no
        reference): redaction then changes it in place instead of copying it first.
        Emitted inside a traced request, the event carries the trace id (`extra.trace_id`), so an
        audit row leads to its trace and back, and the emit (redaction, enqueue) is a span."""
        current = current_span.get()
        if current is None:
            self._enqueue(redact_event(event, self._keys, owned=owned))
            return
        # Recorded without a Span object (nothing below opens a span or needs its id): one call.
        start = time_ns()
        error = None
        try:
            redacted = redact_event(event, self._keys, owned=owned)
            if not (redacted.extra and "trace_id" in redacted.extra):
                # After redaction: our own hex id has nothing to redact (and costs no scan).
                extra = {**(redacted.extra or {}), "trace_id": current.trace_id}
                if redacted is event and not owned:  # the caller's object: copied, never changed
                    redacted = redacted._with({"extra": extra})
                else:  # a fresh copy or an owned event, held by no one else: set in place (a copy costs ~3 us)
                    object.__setattr__(redacted, "extra", extra)
            self._enqueue(redacted)
        except BaseException as exc:
            error = type(exc).__name__  # the type only, as Span.__exit__ records it
            raise
        finally:
            kind = event.event_type
            current.record_rendered(None, start, _SPAN_TAILS.get(kind) or child_tail(
                _SPAN_TAILS, kind, "audit.emit", INTERNAL, ("audit.event_type", kind)), error)

    def _enqueue(self, event: AuditEvent) -> None:
        self.metrics.queued.inc()
        queue = self._queue
        if self._running and len(queue) < self._queue_size:
            queue.append(event)
            self._enqueued += 1
            if self._idle:
                self._idle = False
                self._arrived.set()
            elif len(queue) >= self._batch_size:
                self._wake.set()
            return
        # Overflow is collected and spilled in batches: one fsync per event would make an
        # overloaded process slower still. Like the queue, the buffer lives only until the next
        # turn of the event loop.
        self._overflow.append(event)
        if len(self._overflow) >= self._batch_size:
            self._flush_overflow()
        elif len(self._overflow) == 1:
            try:
                asyncio.get_running_loop().call_soon(self._flush_overflow)
            except RuntimeError:  # no loop (emitting after shutdown): write through now
                self._flush_overflow()

    def _flush_overflow(self) -> None:
        events, self._overflow = self._overflow, []
        if not events:
            return
        self._write_local(events)
        if self._replay is not None:
            self._replay.spill(events)

    async def flush(self) -> None:
        """Wait until every event emitted so far has been handled by the writer."""
        if self._handled >= self._enqueued:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._flushes.append((self._enqueued, waiter))
        self._flushing += 1
        try:
            self._wake.set()
            await waiter
        finally:
            self._flushing -= 1

    async def replay_now(self) -> None:
        """Try to replay the spool immediately (tests and the CLI; the replayer also does this)."""
        if self._replay is not None:
            await self._replay.replay_all()

    async def close(self) -> None:
        """Drain the queue through the sinks, try a last replay, stop the tasks and close files."""
        if not self._running:
            return
        self._running = False
        self._flush_overflow()
        self._wake.set()
        self._queue.append(_STOP)  # past the bound: emit spills once not running
        self._arrived.set()
        writer, *others = self._tasks
        await writer
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        replay = self._replay
        if replay is not None and replay.healthy and replay.spool.has_pending():
            # One last attempt so a clean shutdown leaves no spool behind; failing is fine.
            with contextlib.suppress(Exception):
                await replay.replay_all()
        for sink in self._sinks:
            sink.close()
        if replay is not None:
            replay.spool.close()

    async def _writer(self) -> None:
        queue = self._queue
        while True:
            if not queue:
                self._idle = True
                self._arrived.clear()
                await self._arrived.wait()
                self._idle = False
            batch = [queue.popleft()]
            if self._should_linger(batch[0]):
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._linger):
                        await self._wake.wait()
            self._wake.clear()
            while len(batch) < self._batch_size and queue:
                batch.append(queue.popleft())
            stop = batch[-1] is _STOP
            events = batch[:-1] if stop else batch
            if events:
                try:
                    self._write_local(events)
                    if self._replay is not None:
                        await self._write_postgres(self._replay, events)
                except Exception:
                    # Never let one bad batch stop auditing for the life of the process.
                    self.metrics.dropped.inc(len(events))
                    log.exception("AUDIT EVENTS LOST: unexpected error in the audit writer")
            self._handled += len(events)
            if self._flushes:
                self._served()
            if stop:
                return

    def _served(self) -> None:
        """Wake the `flush` callers whose events have all been handled."""
        handled = self._handled
        waiting = []
        for target, waiter in self._flushes:
            if target <= handled:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((target, waiter))
        self._flushes = waiting

    def _should_linger(self, first: Any) -> bool:
        # Lingering only helps a batch that is not full yet. With a backlog (a burst, or draining
        # on close/flush) every pause would cap the writer at batch_size per linger interval.
        return (
            first is not _STOP
            and self._running
            and not self._flushing
            and not self._wake.is_set()
            and len(self._queue) + 1 < self._batch_size
        )

    async def _write_postgres(self, replay: Replayer, events: list[AuditEvent]) -> None:
        if not replay.healthy:
            replay.spill(events)
            return
        try:
            written = await pgwrite.write(self._pool(), events, idempotent=False)
        except Exception as exc:
            # The batch may or may not have committed; the spool's idempotent replay settles it.
            replay.spill(events)
            if pgwrite.is_unavailable(exc):
                replay.healthy = False
                log.warning("audit database unavailable; spooling", extra={"error": repr(exc)})
            else:
                log.error("audit batch refused; spooled for row-by-row replay", extra={"error": repr(exc)})
            return
        self.metrics.batches.labels("copy").inc()
        self.metrics.written.inc(written)

    def _pool(self) -> asyncpg.Pool:
        pool = self._pool_getter() if self._pool_getter else None
        if pool is None:
            raise DatabaseMissing("no database pool")
        return pool

    def _write_local(self, events: list[AuditEvent]) -> None:
        for sink in self._sinks:
            try:
                sink.write(events)
            except Exception as exc:  # noqa: BLE001 - a local sink never stops the others or Postgres
                self.metrics.sink_errors.labels(sink.name).inc(len(events))
                log.error("audit sink failed", extra={"sink": sink.name, "error": repr(exc)})
