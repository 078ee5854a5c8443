"""Admin API operations the console also offers: impact replay, emergency block, reviewed rollback.

Same checks as the admin API (bearer JWT with an admin role); the same functions the console uses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from pdp import store
from pdp.admin import PREFIX, _admin, _error, _pool, _statements
from pdp.keys import SETTINGS
from pdp.policy import PolicyInvalid, load_engine, parse_policy
from pdp.publish import apply_active
from pdp.ui import drafts, review, yamledit
from pdp.ui.replay import replay_recent
from shared.audit import AuditEvent
from shared.jsonutil import json_response, read_json
from shared.keys import AUDIT

MAX_REPLAY = 100_000


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _error(400, "bad_request", "body must be a JSON object")
    if unknown := set(body) - allowed:
        raise _error(400, "bad_request", f"unknown field(s): {', '.join(sorted(unknown))}")
    return body


async def impact(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/impact {yaml, n=10000}: replay the last n audited decisions against it."""
    await _admin(request)
    pool = _pool(request)
    body = await _body(request, {"yaml", "n"})
    n = body.get("n", 10_000)
    if not isinstance(body.get("yaml"), str) or not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_REPLAY:
        raise _error(400, "bad_request", f"'yaml' must be a string and 'n' a number from 1 to {MAX_REPLAY}")
    _statements(body["yaml"])
    engine = await asyncio.to_thread(load_engine, body["yaml"], "candidate")
    out = await replay_recent(pool, engine, n)
    return json_response({
        "replayed": out.replayed, "skipped": out.skipped, "flips": dict(out.flips), "approximate": out.approximate,
        "by_user": [{"subject": s, "flip": f, "count": c} for (s, f), c in out.by_user.most_common(100)],
        "by_tool": [{"tool": t, "flip": f, "count": c} for (t, f), c in out.by_tool.most_common(100)],
        "examples": out.examples})


async def block(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/block {kind: user|server|tool, value, reason}: publish a top-priority deny now."""
    who = await _admin(request)
    pool = _pool(request)
    body = await _body(request, {"kind", "value", "reason"})
    if not all(isinstance(body.get(k), str) for k in ("kind", "value", "reason")):
        raise _error(400, "bad_request", "'kind', 'value' and 'reason' must be strings")
    active = await store.active(pool)
    if active is None:
        raise _error(409, "no_policy", "no active policy to add a block to")
    try:
        text = yamledit.add_block(active["yaml"], body["kind"], body["value"], body["reason"])
        parse_policy(text)
    except (ValueError, PolicyInvalid) as exc:
        raise _error(400, "bad_request", str(exc)) from None
    comment = f"emergency block of {body['kind']} {body['value'].strip()}: {body['reason'].strip()}"
    version, previous = await store.create_version(pool, text, who.subject, comment, activate=True)
    await apply_active(request.app, subject=who.subject, roles=list(who.roles), op="block", previous=previous,
                       version=version, remote=request.remote,
                       extra={"kind": body["kind"], "value": body["value"], "reason": body["reason"]})
    return json_response({"policy_version": store.version_label(version), "previous": previous,
                          "rule": f"{yamledit.BLOCK_PREFIX}{body['kind']} {body['value'].strip()}"}, status=201)


async def rollback(request: web.Request) -> web.Response:
    """POST /admin/v1/policy/rollback {version?, reason?}: ask for an earlier version back, or confirm.

    Four eyes, as in the console: the first call creates a submitted rollback draft (202); the same
    rollback asked by a different subject (or approved in the console) publishes it (200). Without
    `version` the target is the version active before the current one.
    """
    who = await _admin(request)
    pool = _pool(request)
    body = await _body(request, {"version", "reason"}) if request.can_read_body else {}
    target, reason = body.get("version"), body.get("reason", "")
    if target is None:
        target = await store.rollback_target(pool)
        if target is None:
            raise _error(409, "no_previous", "there is no previously active version to roll back to")
    if not isinstance(target, int) or isinstance(target, bool) or not isinstance(reason, str) or len(reason) > 2000:
        raise _error(400, "bad_request", "'version' must be a version number and 'reason' text under 2000 characters")
    self_approve = request.app[SETTINGS].console_self_approve
    row = await drafts.open_rollback(pool, target)
    if row is not None:
        row = await drafts.get(pool, row["id"])  # with its YAML, checked again below
    if row is None:
        try:
            draft_id = await review.request(pool, target, who.subject, reason)
        except KeyError:
            raise _error(404, "not_found", f"no policy version {target}") from None
        except ValueError as exc:
            raise _error(409, "invalid_stored", str(exc)) from None
        row = await drafts.get(pool, draft_id)
        assert row is not None
        _audit_request(request, who.subject, list(who.roles), target, draft_id, reason)
        if not self_approve:
            return json_response({"status": "pending_review", "draft": draft_id,
                                  "restores": store.version_label(target),
                                  "message": "a second approver must confirm: another admin asks for the same "
                                             f"rollback, or an approver approves draft {draft_id} in the console"},
                                 status=202)
    if not await review.still_loads(pool, row):  # as the console's Approve: the PDP may have changed since
        raise _error(409, "invalid_stored", review.NO_LONGER_LOADS, draft=row["id"])
    try:
        version, previous = await review.publish(request.app, subject=who.subject, roles=list(who.roles),
                                                 remote=request.remote, row=row, comment=reason,
                                                 self_approve=self_approve)
    except drafts.OwnChange as exc:
        raise _error(403, "own_change", str(exc), draft=row["id"]) from None
    except drafts.DraftConflict as exc:
        raise _error(409, "conflict", str(exc)) from None
    return json_response({"policy_version": store.version_label(version), "previous": previous,
                          "restores": store.version_label(target), "draft": row["id"]})


def _audit_request(request: web.Request, subject: str, roles: list[str], target: int, draft: int,
                   reason: str) -> None:
    """The API's `rollback_request` row (the console writes its own): who asked for which version back."""
    audit = request.app.get(AUDIT)
    if audit is not None:
        audit.emit(AuditEvent(event_type="policy_change", service="pdp", subject=subject, roles=roles,
                              action="rollback_request", status="success", client_addr=request.remote,
                              extra={"to_version": store.version_label(target), "draft": draft,
                                     "comment": reason}))


def setup_routes(app: web.Application) -> None:
    """Register the operations."""
    app.router.add_post(PREFIX + "/impact", impact)
    app.router.add_post(PREFIX + "/block", block)
    app.router.add_post(PREFIX + "/rollback", rollback)
