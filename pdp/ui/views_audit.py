"""Decisions (keyset-paginated audit trail, export, one decision) and Impact (replay)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from pdp.ui import drafts
from pdp.ui.analysis import check
from pdp.ui.auth import need
from pdp.ui.render import page
from pdp.ui.replay import replay_recent
from shared import csvsafe
from shared.jsonutil import dumps_str, loads
from shared.keys import DB_POOL

PAGE = 50
EXPORT_MAX = 10_000
FILTERS = {"subject": "subject", "server": "mcp_server", "tool": "tool", "decision": "decision",
           "service": "service", "event_type": "event_type"}
LIST_COLUMNS = ("id, ts, service, event_type, subject, roles, action, mcp_server, tool, decision, reason, "
                "policy_version, status, decision_id, request_id")


def _when(value: str, name: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name} must be an ISO 8601 time, e.g. 2026-12-07T10:00:00+00:00") from None
    if parsed.tzinfo is None:
        raise web.HTTPBadRequest(text=f"{name} needs a time zone offset (e.g. +00:00)")
    return parsed


def where_clause(query: Any) -> tuple[str, list[Any]]:
    """SQL WHERE and arguments for the filters in `query` (keyset cursor `after=TS|ID` included)."""
    parts, args = [], []
    for field_name, column in FILTERS.items():
        if query.get(field_name):
            args.append(query[field_name])
            parts.append(f"{column} = ${len(args)}")
    for field_name, op in (("since", ">="), ("until", "<")):
        if query.get(field_name):
            args.append(_when(query[field_name], field_name))
            parts.append(f"ts {op} ${len(args)}")
    if query.get("after"):
        ts, _, ident = query["after"].partition("|")
        if not ident.isdigit():
            raise web.HTTPBadRequest(text="after must be a cursor from the previous page")
        args.extend([_when(ts, "after"), int(ident)])
        parts.append(f"(ts, id) < (${len(args) - 1}, ${len(args)})")
    return (" WHERE " + " AND ".join(parts)) if parts else "", args


async def decisions(request: web.Request) -> web.Response:
    """GET /console/decisions: newest first, keyset pagination by (ts, id)."""
    who = await need(request)
    where, args = where_clause(request.query)
    rows = await request.app[DB_POOL].fetch(
        f"SELECT {LIST_COLUMNS} FROM audit_events{where} ORDER BY ts DESC, id DESC LIMIT {PAGE + 1}", *args)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    keep = {k: v for k, v in request.query.items() if k != "after" and v}
    cursor = f"{rows[-1]['ts'].isoformat()}|{rows[-1]['id']}" if more and rows else None
    return page(request, "decisions.html", {"title": "Decisions", "rows": rows, "q": request.query,
                                            "keep": keep, "cursor": cursor}, who=who)


async def export(request: web.Request) -> web.StreamResponse:
    """GET /console/decisions/export?format=csv|json (same filters; at most EXPORT_MAX rows)."""
    await need(request)
    fmt = request.query.get("format", "csv")
    if fmt not in ("csv", "json"):
        raise web.HTTPBadRequest(text="format must be csv or json")
    where, args = where_clause(request.query)
    rows = await request.app[DB_POOL].fetch(
        f"SELECT {LIST_COLUMNS} FROM audit_events{where} ORDER BY ts DESC, id DESC LIMIT {EXPORT_MAX}", *args)
    records = [{k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]
    headers = {"Content-Disposition": f'attachment; filename="decisions.{fmt}"'}
    if fmt == "json":
        return web.Response(text=dumps_str(records), content_type="application/json", headers=headers)
    text = csvsafe.table([c.strip() for c in LIST_COLUMNS.split(",")], records)
    return web.Response(text=text, content_type="text/csv", headers=headers)


async def decision(request: web.Request) -> web.Response:
    """GET /console/decisions/{decision_id}: the gateway and PDP rows of one decision, joined."""
    who = await need(request)
    rows = await request.app[DB_POOL].fetch(
        "SELECT * FROM audit_events WHERE decision_id = $1 ORDER BY ts, id", request.match_info["decision_id"])
    if not rows:
        raise web.HTTPNotFound(text="no audit rows for this decision id")
    pretty = [{k: (dumps_str(v) if isinstance(v, dict | list) else v) for k, v in r.items()} for r in rows]
    deciding = next(({"reason": r["reason"], "statement": _statement(r["extra"]), "version": r["policy_version"]}
                     for r in rows if r["service"] == "pdp" and r["event_type"] == "policy_decision"), None)
    return page(request, "decision.html", {"title": "Decision", "rows": pretty, "deciding": deciding,
                                           "decision_id": request.match_info["decision_id"]}, who=who)


def _statement(extra: Any) -> dict[str, Any] | None:
    try:
        parsed = loads(extra) if isinstance(extra, str | bytes) else extra
    except ValueError:
        return None
    statement = parsed.get("statement") if isinstance(parsed, dict) else None
    return statement if isinstance(statement, dict) else None


async def impact(request: web.Request) -> web.Response:
    """GET /console/impact?draft=&n=: replay the last n PDP decisions against a draft."""
    who = await need(request)
    pool = request.app[DB_POOL]
    open_drafts = [r for r in await drafts.listing(pool) if r["status"] in ("draft", "submitted")]
    ctx: dict[str, Any] = {"title": "Impact", "drafts": open_drafts, "q": request.query, "result": None,
                           "error": None}
    raw_n = request.query.get("n", "10000")
    if not raw_n.isdigit() or not 1 <= int(raw_n) <= 100_000:
        raise web.HTTPBadRequest(text="n must be a number from 1 to 100000")
    if request.query.get("draft", "").isdigit():
        row = await drafts.get(pool, int(request.query["draft"]))
        checked = await asyncio.to_thread(check, row["yaml"]) if row else None
        if checked is None or checked.engine is None:
            ctx["error"] = "that draft does not exist or is not valid"
        else:
            start = time.perf_counter()
            ctx["result"] = await replay_recent(pool, checked.engine, int(raw_n))
            ctx["seconds"] = time.perf_counter() - start
            ctx["draft"] = row
    return page(request, "impact.html", ctx, who=who)
