"""Audit counters on the app's own Prometheus registry."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge


class AuditMetrics:
    """queued/written/spilled/replayed/dropped counters, batches by path, and the queue depth.

    Invariant when nothing is lost: queued == written + replayed (+ events still queued or
    spooled), and dropped stays 0 unless the spool itself (local disk) fails.
    """

    def __init__(self, registry: CollectorRegistry, depth: Callable[[], int]) -> None:
        def counter(name: str, doc: str, labels: tuple[str, ...] = ()) -> Counter:
            return Counter(f"mcpgw_audit_{name}", doc, labels, registry=registry)

        self.queued = counter("queued_events", "Audit events emitted")
        self.written = counter("written_events", "Audit events written to Postgres directly")
        self.spilled = counter("spilled_events", "Audit events written to the local spool")
        self.replayed = counter("replayed_events", "Spooled audit events stored in Postgres")
        self.dropped = counter("dropped_events", "Audit events lost (spool failure) or rejected")
        self.batches = counter("batches", "Postgres audit batches by write path", ("path",))
        self.sink_errors = counter("sink_errors", "Events a local sink failed to write", ("sink",))
        self.depth = Gauge("mcpgw_audit_queue_depth", "Audit events waiting", registry=registry)
        self.depth.set_function(depth)

    @staticmethod
    def value(counter: Counter, **labels: str) -> float:
        """A counter's current value (tests, bench)."""
        target = counter.labels(**labels) if labels else counter
        return float(target._value.get())
