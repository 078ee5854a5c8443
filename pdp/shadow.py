"""Casbin in the production loop: a sample of live fast-path answers re-decided by stock pycasbin.

The hot path only draws a random number and, for a sampled decision, puts (engine, request,
statement) on a bounded queue. One background task drains the queue and runs `enforce_ex` in a
worker thread against an enforcer built from the same compiled policy (built once per policy
version, also in the thread). A different deciding statement is a disagreement: an error log, the
`pdp_shadow_checks_total{result="disagree"}` metric, a `policy_shadow_disagreement` audit event and,
when `shadow_fail_readiness` is set, a failing /readyz until the process restarts. A full queue drops
the sample (counted), so a burst can never slow decisions down.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import casbin

from pdp.metrics import PdpMetrics
from pdp.policy import Engine, Request, Statement
from pdp.policy.casbin_engine import build_enforcer, casbin_decide
from pdp.policy.naming import resource_string
from shared.audit import AuditEvent

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000
BATCH = 256  # samples re-decided per thread hop


@dataclass(frozen=True)
class Disagreement:
    """One fast-path answer Casbin decided differently."""

    version: str
    request: Request
    fast: Statement
    casbin: Statement | None  # None: Casbin raised
    error: str | None = None

    def describe(self) -> dict[str, Any]:
        """The audit event's `extra`."""
        return {"fast_path": self.fast.describe(), "casbin": self.casbin.describe() if self.casbin else None,
                "error": self.error, "groups": list(self.request.groups)}


class Shadow:
    """Samples decisions (`offer`, on the hot path) and re-decides them with Casbin (`run`)."""

    def __init__(self, rate: float, metrics: PdpMetrics, emit: Callable[[AuditEvent], None] | None = None,
                 queue_size: int = QUEUE_SIZE) -> None:
        self.rate = rate
        self.metrics = metrics
        self.emit = emit
        self.queue: asyncio.Queue[tuple[Engine, Request, Statement]] = asyncio.Queue(queue_size)
        self.disagreements = 0
        self.last: Disagreement | None = None
        self._enforcer: tuple[Engine, casbin.Enforcer] | None = None

    def offer(self, engine: Engine, req: Request, statement: Statement) -> None:
        """Hot path: queue a sample of decisions for re-decision (never blocks, never raises)."""
        rate = self.rate
        if rate <= 0.0 or (rate < 1.0 and random.random() >= rate):
            return
        try:
            self.queue.put_nowait((engine, req, statement))
        except asyncio.QueueFull:
            self.metrics.shadow.labels("dropped").inc()

    async def run(self) -> None:
        """Drain the queue forever, re-deciding samples in a worker thread."""
        while True:
            batch = [await self.queue.get()]
            while len(batch) < BATCH and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            try:
                found = await asyncio.to_thread(self._check, batch)
                for item in found:
                    self._report(item)
            except Exception:  # noqa: BLE001 - the checker must outlive any one bad batch
                log.exception("shadow re-decision failed; continuing")
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _enforcer_for(self, engine: Engine) -> casbin.Enforcer:
        if self._enforcer is None or self._enforcer[0] is not engine:
            self._enforcer = (engine, build_enforcer(engine.compiled))
        return self._enforcer[1]

    def _check(self, batch: list[tuple[Engine, Request, Statement]]) -> list[Disagreement]:
        """Worker thread: re-decide each sample; return the disagreements."""
        found = []
        for engine, req, fast in batch:
            try:
                stmt: Statement | None = casbin_decide(self._enforcer_for(engine), engine.compiled, req)
                error = None
            except Exception as exc:  # noqa: BLE001 - a Casbin failure is a disagreement, not a crash
                stmt, error = None, f"{type(exc).__name__}: {exc}"
            if stmt is not None and stmt.index == fast.index:
                self.metrics.shadow.labels("agree").inc()
                continue
            self.metrics.shadow.labels("disagree" if error is None else "error").inc()
            found.append(Disagreement(engine.version, req, fast, stmt, error))
        return found

    def _report(self, d: Disagreement) -> None:
        self.disagreements += 1
        self.last = d
        log.error("fast path and Casbin disagree", extra={
            "policy_version": d.version, "subject": d.request.subject, "action": d.request.action,
            "resource": resource_string(d.request), "fast_path": d.fast.reason(),
            "casbin": d.casbin.reason() if d.casbin else d.error})
        if self.emit is not None:
            self.emit(AuditEvent(
                event_type="policy_shadow_disagreement", service="pdp", subject=d.request.subject,
                roles=list(d.request.roles), action=d.request.action, mcp_server=d.request.server,
                tool=d.request.tool, resource=resource_string(d.request),
                decision="allow" if d.fast.effect == "allow" else "deny",
                reason=f"fast path: {d.fast.reason()}; casbin: {d.casbin.reason() if d.casbin else d.error}",
                policy_version=d.version, status="error", extra=d.describe()))

