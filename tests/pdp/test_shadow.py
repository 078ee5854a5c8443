"""pdp/shadow.py: sampled re-decision of fast-path answers by stock pycasbin."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from prometheus_client import CollectorRegistry

from pdp.metrics import PdpMetrics
from pdp.policy import Request, load_engine
from pdp.shadow import Shadow
from shared.audit import AuditEvent

POLICY = (Path(__file__).resolve().parents[2] / "policies" / "policy.yaml").read_text()
REQUESTS = [
    Request("dev@example.com", "invoke_tool", "dev-server", "tool", "x"),
    Request("admin@example.com", "invoke_tool", "prod-server", "tool", "db_delete"),
    Request("nobody", "invoke_tool", "s", "tool", "t"),
    Request("z", "list_tools", "other", "server", None, (), ("/engineering",)),
]


def _count(metrics: PdpMetrics, result: str) -> float:
    return metrics.shadow.labels(result)._value.get()


@contextlib.asynccontextmanager
async def running(shadow: Shadow):
    task = asyncio.create_task(shadow.run())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_agreeing_samples_count_as_agree_and_report_nothing():
    engine = load_engine(POLICY, "v1")
    events: list[AuditEvent] = []
    shadow = Shadow(1.0, PdpMetrics(CollectorRegistry()), events.append)
    async with running(shadow):
        for req in REQUESTS:
            shadow.offer(engine, req, engine.decide(req).statement)
        await shadow.queue.join()
    assert _count(shadow.metrics, "agree") == len(REQUESTS)
    assert shadow.disagreements == 0 and events == []


async def test_a_drifted_answer_is_a_disagreement_with_metric_and_audit_event():
    engine = load_engine(POLICY, "v7")
    events: list[AuditEvent] = []
    shadow = Shadow(1.0, PdpMetrics(CollectorRegistry()), events.append)
    req = REQUESTS[1]  # Casbin: the prod deny rule decides
    wrong = next(s for s in engine.compiled.statements if s.kind == "role" and s.role == "admin")
    async with running(shadow):
        shadow.offer(engine, req, wrong)
        await shadow.queue.join()
    assert shadow.disagreements == 1 and _count(shadow.metrics, "disagree") == 1
    assert shadow.last is not None and shadow.last.casbin is not None and shadow.last.casbin.kind == "rule"
    (event,) = events
    assert event.event_type == "policy_shadow_disagreement" and event.policy_version == "v7"
    assert event.decision == "allow" and event.status == "error"
    assert event.extra["casbin"]["name"] == "Block dangerous tools in production"


async def test_rate_zero_samples_nothing_and_a_full_queue_drops():
    engine = load_engine(POLICY, "v1")
    req = REQUESTS[0]
    off = Shadow(0.0, PdpMetrics(CollectorRegistry()))
    off.offer(engine, req, engine.decide(req).statement)
    assert off.queue.qsize() == 0
    tiny = Shadow(1.0, PdpMetrics(CollectorRegistry()), queue_size=1)
    for _ in range(3):  # no worker running: the queue fills, the rest are dropped, nothing blocks
        tiny.offer(engine, req, engine.decide(req).statement)
    assert tiny.queue.qsize() == 1 and _count(tiny.metrics, "dropped") == 2
