"""AuthZEN answers for native Casbin versions: evaluation, evaluations, subject/resource/action search.

The request shapes are plain AuthZEN 1.0 (any subject/resource type, any action name); the mapping
to `enforce` arguments is the model's (pdp/policy/native_map.py). Cache hits are answered on the
event loop; everything that runs `enforce` runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from typing import Any

from aiohttp import web

from pdp.keys import METRICS, SETTINGS
from pdp.policy.native_engine import NativeEngine, NativeOutcome
from pdp.state import Active
from shared import authzen
from shared.audit import AuditEvent
from shared.authzen import BadInput
from shared.keys import AUDIT
from shared.logging import caller_request_id, request_id_var


def _obj(value: Any, where: str, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{where} must be an object")
    if isinstance(value.get("id"), int) and not isinstance(value["id"], bool):
        value = {**value, "id": str(value["id"])}  # AuthZEN ids are strings; interop payloads send 101
    for key in required:
        if not isinstance(value.get(key), str) or not value[key]:
            raise BadInput(f"{where}.{key} must be a non-empty string")
    props = value.get("properties")
    if props is not None and not isinstance(props, dict):
        raise BadInput(f"{where}.properties must be an object")
    return value


def parse_native_evaluation(body: Any, defaults: dict[str, Any] | None = None, where: str = "") -> dict[str, Any]:
    """A merged AuthZEN evaluation (subject, action, resource, context) checked for shape."""
    if not isinstance(body, dict):
        raise BadInput(f"{where or 'body'} must be an object")
    merged = {**(defaults or {}), **body}
    p = f"{where}." if where else ""
    for key in ("subject", "action", "resource"):
        if key not in merged:
            raise BadInput(f"{p}{key} is required")
    out = {"subject": _obj(merged["subject"], f"{p}subject", ("type", "id")),
           "action": _obj(merged["action"], f"{p}action", ("name",)),
           "resource": _obj(merged["resource"], f"{p}resource", ("type", "id"))}
    context = merged.get("context")
    if context is not None and not isinstance(context, dict):
        raise BadInput(f"{p}context must be an object")
    out["context"] = context or {}
    return out


def _engine(active: Active) -> NativeEngine:
    assert active.native is not None
    return active.native


async def _decide(app: web.Application, active: Active, body: dict[str, Any]) -> NativeOutcome:
    engine = _engine(active)
    key = engine.key(body)
    hit = engine.cached(key)
    if hit is not None:
        return hit
    try:
        return await asyncio.to_thread(engine.decide, body, key)
    except KeyError as exc:
        raise BadInput(str(exc.args[0])) from None


def _answer(app: web.Application, active: Active, body: dict[str, Any], outcome: NativeOutcome, elapsed: float,
            remote: str | None) -> dict[str, Any]:
    metrics = app[METRICS]
    metrics.latency.observe(elapsed)
    metrics.decisions.labels("allow" if outcome.allowed else "deny").inc()
    metrics.cache.labels("hit" if outcome.cached else "miss").inc()
    decision_id = uuid.uuid4().hex
    audit = app.get(AUDIT)
    rate = app[SETTINGS].audit_allow_sample
    if audit is not None and (not outcome.allowed or rate >= 1.0 or (rate > 0.0 and random.random() < rate)):
        subject, resource, ctx = body["subject"], body["resource"], body["context"]
        audit.emit(AuditEvent(
            event_type="policy_decision", service="pdp", subject=subject["id"], action=body["action"]["name"],
            resource=f"{resource['type']}:{resource['id']}", decision="allow" if outcome.allowed else "deny",
            reason=outcome.reason(), policy_version=active.version, decision_id=decision_id,
            request_id=request_id_var.get(), client_addr=remote, status="success" if outcome.allowed else "denied",
            extra={"statement": outcome.describe(), "subject_type": subject["type"],
                   **caller_request_id(ctx.get("request_id"))},
        ))
    return authzen.decision_answer(outcome.allowed, decision_id, active.version, outcome.reason(), outcome.describe())


async def evaluation(request: web.Request, active: Active, raw: Any) -> dict[str, Any]:
    """POST /access/v1/evaluation on a native version."""
    body = parse_native_evaluation(raw)
    start = time.perf_counter()
    outcome = await _decide(request.app, active, body)
    return _answer(request.app, active, body, outcome, time.perf_counter() - start, request.remote)


async def evaluations(request: web.Request, active: Active, items: list[Any], defaults: dict[str, Any],
                      semantic: str) -> dict[str, Any]:
    """POST /access/v1/evaluations on a native version: every item checked first, then one thread hop."""
    bodies = [parse_native_evaluation(item, defaults, f"evaluations[{i}]") for i, item in enumerate(items)]
    start = time.perf_counter()
    try:
        outcomes = await asyncio.to_thread(_engine(active).batch, bodies, semantic)
    except KeyError as exc:
        raise BadInput(str(exc.args[0])) from None
    each = (time.perf_counter() - start) / max(1, len(outcomes))
    return authzen.evaluations_answer([_answer(request.app, active, b, o, each, request.remote)
                                       for b, o in zip(bodies, outcomes, strict=False)])


async def search(request: web.Request, active: Active, kind: str, raw: Any) -> dict[str, Any]:
    """POST /access/v1/search/{subject,resource,action}: enumerate the policy's values, decide each."""
    if not isinstance(raw, dict):
        raise BadInput("body must be an object")
    need = {"subject": (("type",), ("name",), ("type", "id")), "resource": (("type", "id"), ("name",), ("type",)),
            "action": (("type", "id"), None, ("type", "id"))}[kind]
    base: dict[str, Any] = {}
    for part, required in zip(("subject", "action", "resource"), need, strict=True):
        if required is not None:
            base[part] = _obj(raw.get(part), part, required)
    context = raw.get("context") or {}
    if not isinstance(context, dict):
        raise BadInput("context must be an object")
    base["context"] = context
    engine = _engine(active)
    candidates = context.get("candidates")
    if candidates is None:
        candidates = engine.candidates(kind)
    elif not isinstance(candidates, list) or not all(isinstance(c, str) and c for c in candidates):
        raise BadInput("context.candidates must be a list of non-empty strings")
    if len(candidates) > request.app[SETTINGS].max_batch:
        raise BadInput(f"{len(candidates)} candidates; at most {request.app[SETTINGS].max_batch} per request")
    rtype = base[kind]["type"] if kind != "action" else None
    allowed = await asyncio.to_thread(engine.search, kind, base, rtype, list(candidates))
    results = [{"name": c} if kind == "action" else {"type": rtype, "id": c} for c in allowed]
    audit = request.app.get(AUDIT)
    if audit is not None:  # one event per search, like YAML resource searches
        subject = base.get("subject") or {}
        audit.emit(AuditEvent(
            event_type="policy_decision", service="pdp", subject=subject.get("id"),
            action=f"search_{kind}:{(base.get('action') or {}).get('name', '*')}",
            decision="allow" if allowed else "deny", reason=f"{len(allowed)} of {len(candidates)} candidates allowed",
            policy_version=active.version, client_addr=request.remote, status="success",
            extra={"candidates": len(candidates), "allowed": len(allowed), "kind": kind},
        ))
    return {"results": results, "context": {"policy_version": active.version, "candidates": len(candidates)}}


SEARCH_PATHS = {"subject": "/access/v1/search/subject", "resource": authzen.SEARCH_RESOURCE_PATH,
                "action": "/access/v1/search/action"}
