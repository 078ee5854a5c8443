"""Drafts: list, new, editor (Validate / Save draft / Submit for review), review, diff, what-if."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from pdp import store
from pdp.keys import SETTINGS, STATE
from pdp.policy.naming import resource_string
from pdp.publish import text_diff
from pdp.ui import drafts
from pdp.ui import review as reviews
from pdp.ui.analysis import check, decide, lines_with_errors, run_tests, semantic_diff, split_list
from pdp.ui.auth import audit_change, need, need_post
from pdp.ui.render import page
from pdp.wire import BadInput
from shared.jsonutil import loads
from shared.keys import DB_POOL

MAX_TEXT = 512 * 1024


def _id(request: web.Request) -> int:
    raw = request.match_info["draft"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text="draft id must be a number")
    return int(raw)


async def _draft(request: web.Request) -> Any:
    row = await drafts.get(request.app[DB_POOL], _id(request))
    if row is None:
        raise web.HTTPNotFound(text="no such draft")
    return row


def _text(form: Any, name: str) -> str:
    value = form.get(name, "")
    if not isinstance(value, str) or len(value) > MAX_TEXT:
        raise web.HTTPBadRequest(text=f"field {name!r} must be text under {MAX_TEXT} bytes")
    return value.replace("\r\n", "\n")


async def listing(request: web.Request) -> web.Response:
    """GET /console/drafts."""
    who = await need(request)
    rows = await drafts.listing(request.app[DB_POOL])
    return page(request, "drafts.html", {"title": "Drafts", "rows": rows}, who=who)


async def create(request: web.Request) -> web.Response:
    """POST /console/drafts: a new draft starting from the active policy."""
    who, form = await need_post(request, "edit")
    pool = request.app[DB_POOL]
    active = await store.active(pool)
    tests = await drafts.current_tests(pool, active["version"]) if active else ""
    draft_id = await drafts.create(pool, active["yaml"] if active else "", tests,
                                   _text(form, "title") or "untitled", who.subject,
                                   active["version"] if active else None)
    audit_change(request, who, "draft_create", draft=draft_id)
    raise web.HTTPSeeOther(f"/console/drafts/{draft_id}")


def _editor(request: web.Request, who: Any, row: Any, text: str, tests: str, title: str, *,
            checked: Any = None, results: Any = None, message: str = "", status: int = 200) -> web.Response:
    lines, loose = lines_with_errors(text, checked.errors) if checked and checked.errors else ([], [])
    settings = request.app[SETTINGS]
    own = who.subject in row["contributors"]
    return page(request, "draft.html", {
        "title": f"Draft {row['id']}", "draft": row, "yaml": text, "tests": tests, "draft_title": title,
        "checked": checked, "lines": lines, "loose": loose, "results": results, "message": message,
        "may_review": row["status"] == "submitted" and (not own or settings.console_self_approve),
        "own": own, "stale": _stale(request, row)}, who=who, status=status)


def _stale(request: web.Request, row: Any) -> str | None:
    """The active version when an open draft was started from another one (its changes are not in it)."""
    current = request.app[STATE].current
    if current is None or row["status"] not in ("draft", "rejected", "submitted"):
        return None
    return current.version if current.version != f"v{row['base_version']}" else None


async def show(request: web.Request) -> web.Response:
    """GET /console/drafts/{draft}."""
    who = await need(request)
    row = await _draft(request)
    return _editor(request, who, row, row["yaml"], row["tests"], row["title"])


async def edit(request: web.Request) -> web.Response:
    """POST /console/drafts/{draft} op=validate|save|submit."""
    who, form = await need_post(request, "edit")
    pool, row = request.app[DB_POOL], await _draft(request)
    text, tests, title = _text(form, "yaml"), _text(form, "tests"), _text(form, "title")
    op = form.get("op")
    checked = await asyncio.to_thread(check, text)
    results = run_tests(checked.engine, tests) if checked.engine else None
    if op == "validate":
        return _editor(request, who, row, text, tests, title, checked=checked, results=results,
                       message="Valid." if checked.engine else "", status=200 if checked.engine else 422)
    if op not in ("save", "submit"):
        raise web.HTTPBadRequest(text="op must be validate, save or submit")
    try:
        await drafts.save(pool, row["id"], text, tests, title, who.subject)
    except drafts.DraftConflict as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    audit_change(request, who, "draft_save", draft=row["id"], diff=text_diff(row["yaml"], text, "before", "after"))
    row = await _draft(request)
    if op == "save":
        return _editor(request, who, row, text, tests, title, checked=checked, results=results,
                       message="Draft saved." + ("" if checked.engine else " It is not valid yet."))
    failing = [r for r in results or [] if not r[1]]
    if checked.engine is None or failing:
        why = "it is not valid" if checked.engine is None else f"{len(failing)} policy test(s) fail"
        return _editor(request, who, row, text, tests, title, checked=checked, results=results,
                       message=f"Saved, but not submitted: {why}.", status=422)
    try:
        await drafts.submit(pool, row["id"], _text(form, "comment"), who.subject)
    except drafts.DraftConflict as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    audit_change(request, who, "draft_submit", draft=row["id"], comment=_text(form, "comment"))
    raise web.HTTPSeeOther(f"/console/drafts/{row['id']}")


async def review(request: web.Request) -> web.Response:
    """POST /console/drafts/{draft}/review op=approve|reject: publish or send back, with a comment."""
    who, form = await need_post(request, "approve")
    pool, row = request.app[DB_POOL], await _draft(request)
    comment, op = _text(form, "comment"), form.get("op")
    self_approve = request.app[SETTINGS].console_self_approve
    if who.subject in row["contributors"] and not self_approve:  # checked again under the row lock
        raise web.HTTPForbidden(text=drafts.own_change_message(list(row["contributors"])))
    try:
        if op == "reject":
            await drafts.reject(pool, row["id"], who.subject, comment, self_approve=self_approve)
            audit_change(request, who, "draft_reject", draft=row["id"], comment=comment)
        elif op == "approve":
            if not await reviews.still_loads(pool, row):
                raise web.HTTPConflict(text=reviews.NO_LONGER_LOADS)
            version, _ = await reviews.publish(request.app, subject=who.subject, roles=list(who.roles),
                                               remote=request.remote, row=row, comment=comment,
                                               self_approve=self_approve)
            audit_change(request, who, "draft_approve", draft=row["id"], version=f"v{version}", comment=comment)
        else:
            raise web.HTTPBadRequest(text="op must be approve or reject")
    except drafts.OwnChange as exc:
        raise web.HTTPForbidden(text=str(exc)) from None
    except drafts.DraftConflict as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    raise web.HTTPSeeOther(f"/console/drafts/{row['id']}")


async def diff(request: web.Request) -> web.Response:
    """GET /console/drafts/{draft}/diff: draft vs active, text and meaning."""
    who = await need(request)
    row = await _draft(request)
    current = request.app[STATE].current
    active_text = current.yaml if current else ""
    new = await asyncio.to_thread(check, row["yaml"])
    changes = (semantic_diff(current.engine.compiled.policy, new.engine.compiled.policy)
               if current and new.engine else None)
    return page(request, "diff.html", {"title": f"Draft {row['id']} vs active", "changes": changes,
                                       "text_diff": text_diff(active_text, row["yaml"], "active", "draft"),
                                       "draft": row}, who=who)


async def whatif(request: web.Request) -> web.Response:
    """GET /console/whatif?draft=&subject=…: one request decided under the draft and the active policy."""
    who = await need(request)
    q = request.query
    open_drafts = [r for r in await drafts.listing(request.app[DB_POOL]) if r["status"] in ("draft", "submitted")]
    ctx: dict[str, Any] = {"title": "What-if", "q": q, "drafts": open_drafts, "results": None, "error": None}
    if q.get("subject"):
        try:
            case: dict[str, Any] = {"subject": q["subject"], "roles": list(split_list(q.get("roles", ""))),
                                    "groups": list(split_list(q.get("groups", ""))),
                                    "resource": f"{q.get('server', '')}:{q.get('tool', '')}".rstrip(":"),
                                    "action": q.get("action", "invoke_tool")}
            if q.get("arguments", "").strip():
                case["arguments"] = loads(q["arguments"])
            from pdp.cases import case_request

            req = case_request(case, "request")
        except (BadInput, ValueError) as exc:
            ctx["error"] = str(exc)
            return page(request, "whatif.html", ctx, who=who, status=400)
        results = []
        current = request.app[STATE].current
        if current:
            results.append(("Active " + current.version, decide(current.engine, req)))
        if q.get("draft", "").isdigit():
            row = await drafts.get(request.app[DB_POOL], int(q["draft"]))
            checked = await asyncio.to_thread(check, row["yaml"]) if row is not None else None
            if row is not None and checked is not None and checked.engine:
                results.append((f"Draft {row['id']}", decide(checked.engine, req)))
            elif row is not None:
                ctx["error"] = f"draft {row['id']} is not valid; fix it in the editor first"
        ctx["results"], ctx["resource"] = results, resource_string(req)
    return page(request, "whatif.html", ctx, who=who)
