"""Emergency block (approvers, published at once) and Least privilege (from real traffic)."""

from __future__ import annotations

from aiohttp import web

from pdp import store
from pdp.keys import STATE
from pdp.policy import PolicyInvalid, parse_policy
from pdp.publish import apply_active, text_diff
from pdp.ui import drafts, yamledit
from pdp.ui.auth import audit_change, need, need_post
from pdp.ui.leastpriv import unused, used_grants
from pdp.ui.render import page
from shared.keys import DB_POOL


def _blocks(request: web.Request) -> list[tuple[str, str]]:
    """(rule name, reason) of every emergency block in force."""
    current = request.app[STATE].current
    return yamledit.blocks(current.yaml) if current else []


async def form(request: web.Request) -> web.Response:
    """GET /console/block: active blocks and the block form."""
    who = await need(request)
    return page(request, "block.html", {"title": "Emergency block", "blocks": _blocks(request), "error": None,
                                        "values": {}}, who=who)


async def block(request: web.Request) -> web.Response:
    """POST /console/block op=block (approver: published at once) | op=lift (editor: a draft to review)."""
    op = (await request.post()).get("op")
    who, data = await need_post(request, "approve" if op == "block" else "edit")
    pool = request.app[DB_POOL]
    active = await store.active(pool)
    if active is None:
        raise web.HTTPConflict(text="no active policy")
    try:
        if op == "lift":
            text = yamledit.remove_rule(active["yaml"], str(data.get("rule", "")))
            tests = await drafts.current_tests(pool, active["version"])
            draft_id = await drafts.create(pool, text, tests, f"lift {data.get('rule')}", who.subject,
                                           active["version"])
            audit_change(request, who, "block_lift_draft", draft=draft_id, rule=str(data.get("rule")))
            raise web.HTTPSeeOther(f"/console/drafts/{draft_id}")
        if op != "block":
            raise web.HTTPBadRequest(text="op must be block or lift")
        kind, value, reason = (str(data.get(k, "")) for k in ("kind", "value", "reason"))
        text = yamledit.add_block(active["yaml"], kind, value, reason)
        parse_policy(text)
    except (ValueError, PolicyInvalid) as exc:
        return page(request, "block.html", {"title": "Emergency block", "blocks": _blocks(request),
                                            "error": str(exc), "values": data}, who=who, status=400)
    comment = f"emergency block of {kind} {value.strip()}: {reason.strip()}"
    version, previous = await store.create_version(pool, text, who.subject, comment, activate=True)
    await apply_active(request.app, subject=who.subject, roles=list(who.roles), op="block", previous=previous,
                       version=version, remote=request.remote, extra={"kind": kind, "value": value, "reason": reason})
    audit_change(request, who, "block", kind=kind, value=value, reason=reason, version=f"v{version}",
                 diff=text_diff(active["yaml"], text, "before", "after"))
    raise web.HTTPSeeOther("/console/block")


async def least_privilege(request: web.Request) -> web.Response:
    """GET /console/least-privilege?days=: permissions and role bindings no allowed call used."""
    who = await need(request)
    raw = request.query.get("days", "30")
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise web.HTTPBadRequest(text="days must be a number from 1 to 3650")
    current = request.app[STATE].current
    if current is None:
        raise web.HTTPServiceUnavailable(text="no policy loaded")
    pool = request.app[DB_POOL]
    perms, bindings = unused(current.engine, await used_grants(pool, int(raw)))
    return page(request, "least_privilege.html", {"title": "Least privilege", "perms": perms,
                                                  "bindings": bindings, "days": int(raw)}, who=who)


async def least_privilege_draft(request: web.Request) -> web.Response:
    """POST /console/least-privilege: a draft removing what the page lists (then reviewed as usual)."""
    who, data = await need_post(request, "edit")
    raw = str(data.get("days", "30"))
    if not raw.isdigit() or not 1 <= int(raw) <= 3650:
        raise web.HTTPBadRequest(text="days must be a number from 1 to 3650")
    pool = request.app[DB_POOL]
    active, current = await store.active(pool), request.app[STATE].current
    if active is None or current is None:
        raise web.HTTPConflict(text="no active policy")
    perms, bindings = unused(current.engine, await used_grants(pool, int(raw)))
    text = yamledit.remove_grants(active["yaml"], perms, bindings)
    draft_id = await drafts.create(pool, text, await drafts.current_tests(pool, active["version"]),
                                   f"least privilege ({raw} days)", who.subject, active["version"])
    audit_change(request, who, "least_privilege_draft", draft=draft_id, permissions=len(perms),
                 bindings=len(bindings))
    raise web.HTTPSeeOther(f"/console/drafts/{draft_id}")
