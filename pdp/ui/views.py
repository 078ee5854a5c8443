"""Overview, Policy, History (with roll back) and version diffs."""

from __future__ import annotations

from aiohttp import web

from pdp import store
from pdp.keys import STATE
from pdp.policy import PolicyInvalid, parse_policy
from pdp.publish import text_diff
from pdp.ui import drafts, review
from pdp.ui.analysis import semantic_diff
from pdp.ui.auth import audit_change, need, need_post
from pdp.ui.render import page
from shared.keys import DB_POOL


async def overview(request: web.Request) -> web.Response:
    """GET /console/: active version, counts, last 24 h of decisions, servers and tools in use."""
    who = await need(request)
    pool = request.app[DB_POOL]
    active = await store.active(pool)
    counts = await pool.fetchrow(
        "SELECT (SELECT count(*) FROM policy_versions) AS versions, "
        "(SELECT count(*) FROM console_drafts WHERE status = 'draft') AS drafts, "
        "(SELECT count(*) FROM console_drafts WHERE status = 'submitted') AS submitted")
    decisions = await pool.fetch(
        "SELECT decision, count(*) AS n FROM audit_events WHERE event_type = 'policy_decision' "
        "AND ts > now() - interval '24 hours' GROUP BY decision ORDER BY decision")
    in_use = await pool.fetch(
        "SELECT mcp_server, tool, count(*) AS n FROM audit_events WHERE ts > now() - interval '24 hours' "
        "AND event_type = 'policy_decision' AND mcp_server IS NOT NULL GROUP BY mcp_server, tool "
        "ORDER BY n DESC LIMIT 50")
    current = request.app[STATE].current
    approver = (await pool.fetchval("SELECT reviewer FROM console_drafts WHERE published_version = $1",
                                    active["version"]) if active else None)
    return page(request, "overview.html", {"title": "Overview", "active": active, "counts": counts,
                                           "approver": approver,
                                           "decisions": {r["decision"]: r["n"] for r in decisions},
                                           "in_use": in_use, "loaded": current.version if current else None},
                who=who)


async def policy(request: web.Request) -> web.Response:
    """GET /console/policy: the active policy as tables."""
    who = await need(request)
    current = request.app[STATE].current
    parsed = current.engine.compiled.policy if current else None
    return page(request, "policy.html", {"title": "Policy", "policy": parsed,
                                         "version": current.version if current else None}, who=who)


async def history(request: web.Request) -> web.Response:
    """GET /console/history: every version with author, reviewer, comments and times."""
    who = await need(request)
    rows = await drafts.history(request.app[DB_POOL])
    return page(request, "history.html", {"title": "History", "rows": rows}, who=who)


def _num(value: str | None, what: str) -> int:
    raw = (value or "").removeprefix("v")
    if not raw.isdigit():
        raise web.HTTPBadRequest(text=f"{what} must be a version number like 3 or v3")
    return int(raw)


async def version_diff(request: web.Request) -> web.Response:
    """GET /console/history/diff?a=&b=: text and semantic diff of two stored versions."""
    who = await need(request)
    pool = request.app[DB_POOL]
    a, b = _num(request.query.get("a"), "a"), _num(request.query.get("b"), "b")
    old, new = await store.get_version(pool, a), await store.get_version(pool, b)
    if old is None or new is None:
        raise web.HTTPNotFound(text="no such policy version")
    return page(request, "diff.html", {"title": f"Diff v{a} → v{b}", "text_diff": text_diff(
        old["yaml"], new["yaml"], f"v{a}", f"v{b}"), "changes": _changes(old["yaml"], new["yaml"])}, who=who)


def _changes(old: str, new: str) -> list[tuple[str, str]] | None:
    try:
        return semantic_diff(parse_policy(old), parse_policy(new))
    except PolicyInvalid:
        return None


async def rollback(request: web.Request) -> web.Response:
    """POST /console/history/{version}/rollback: an approver asks for an earlier version back.

    It publishes nothing: it creates a submitted draft with that version's content, which another
    approver reviews like any change (four eyes; docs/console.md "Publishing and roll back").
    """
    who, form = await need_post(request, "approve")
    pool = request.app[DB_POOL]
    version = _num(request.match_info["version"], "version")
    reason = form.get("reason", "")
    if not isinstance(reason, str) or len(reason) > 2000:
        raise web.HTTPBadRequest(text="field 'reason' must be text under 2000 characters")
    try:
        draft_id = await review.request(pool, version, who.subject, reason)
    except KeyError:
        raise web.HTTPNotFound(text="no such policy version") from None
    except ValueError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    audit_change(request, who, "rollback_request", to_version=f"v{version}", draft=draft_id)
    raise web.HTTPSeeOther(f"/console/drafts/{draft_id}")
