"""Impact: replay audited PDP decisions against a draft and report what flips (pure, plus the fetch)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import asyncpg

from pdp.policy import Engine, Request
from pdp.policy.index import Outcome
from pdp.policy.naming import PROMPT_PREFIX, RESOURCE_PREFIX
from shared.jsonutil import loads


def request_from_row(row: Mapping[str, Any]) -> Request | None:
    """The decision request an audit row records (None when the row lacks what a replay needs)."""
    action, server, subject = row.get("action"), row.get("mcp_server"), row.get("subject")
    if not action or not server or subject is None:
        return None
    groups = _groups(row)
    roles = tuple(row.get("roles") or ())
    name = None
    kind = "server"
    if action == "invoke_tool":
        kind, name = "tool", row.get("tool")
    elif action in ("read_resource", "get_prompt"):
        tail = (row.get("resource") or "").split(":", 2)[-1]
        kind = "resource" if action == "read_resource" else "prompt"
        prefix = RESOURCE_PREFIX if kind == "resource" else PROMPT_PREFIX
        name = unquote(tail.removeprefix(prefix)) if kind == "resource" else tail.removeprefix(prefix)
    return Request(subject=subject, action=action, server=server, kind=kind, name=name, roles=roles, groups=groups)


# The newest n PDP decisions come from one backward scan of the partial index
# audit_events_pdp_decisions_idx (migration 0310). Postgres counts the distinct requests among
# them (GROUPED_SQL); the newest rows are read again, a page at a time in the same snapshot, only
# while examples are still missing (PAGE_SQL). `groups` is jsonb, which asyncpg hands over as
# text: equal lists give equal text, so it is part of a replay key unparsed.
_RECENT = ("SELECT {cols} FROM audit_events WHERE event_type = 'policy_decision' AND service = 'pdp' {keyset}"
           "ORDER BY ts DESC, id DESC LIMIT $1")
_KEY_COLUMNS = "subject, roles, action, mcp_server, tool, resource, decision, extra->'groups' AS groups"
GROUPED_SQL = (f"SELECT *, count(*) AS calls FROM ({_RECENT.format(cols=_KEY_COLUMNS, keyset='')}) recent "
               "GROUP BY subject, roles, action, mcp_server, tool, resource, decision, groups")
PAGE_SQL = _RECENT.format(cols=_KEY_COLUMNS + ", ts, id, decision_id", keyset="AND (ts, id) < ($2, $3) ")
FIRST_PAGE_SQL = _RECENT.format(cols=_KEY_COLUMNS + ", ts, id, decision_id", keyset="")


def _groups(row: Mapping[str, Any]) -> tuple[str, ...]:
    raw: Any = row.get("groups")
    if raw is None:
        extra = row.get("extra")
        raw = extra.get("groups") if isinstance(extra, dict) else None
        if isinstance(extra, str | bytes):
            try:
                parsed = loads(extra)
            except ValueError:
                parsed = None
            raw = parsed.get("groups") if isinstance(parsed, dict) else None
    elif isinstance(raw, str | bytes):
        try:
            raw = loads(raw)
        except ValueError:
            raw = None
    return tuple(g for g in raw if isinstance(g, str)) if isinstance(raw, list) else ()


@dataclass
class Impact:
    """What a replay found."""

    replayed: int = 0
    skipped: int = 0
    flips: Counter[str] = field(default_factory=Counter)  # "allow→deny" / "deny→allow"
    by_user: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_tool: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: list[dict[str, Any]] = field(default_factory=list)
    approximate: bool = False  # the draft has argument conditions; audit rows carry no arguments


def uses_arguments(engine: Engine) -> bool:
    """Whether any statement looks at tool arguments (replays without arguments are then approximate)."""
    return any(s.condition is not None and s.condition.arguments for s in engine.compiled.statements)


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    """What a decision depends on, plus the recorded decision: rows with equal keys replay alike."""
    groups = row.get("groups")
    if not isinstance(groups, str | bytes):
        groups = _groups(row)  # a parsed list, or the whole `extra` (tests, older callers)
    roles = row.get("roles")
    return (row.get("subject"), tuple(roles) if roles else (), groups, row.get("action"), row.get("mcp_server"),
            row.get("tool"), row.get("resource"), row.get("decision"))


Verdict = tuple[Request, str, Outcome] | None  # (request, "allow→deny"/"deny→allow", outcome); None: no flip


def decide_groups(engine: Engine, groups: Iterable[tuple[Mapping[str, Any], int]]) -> tuple[Impact, dict[Any, Verdict]]:
    """Replay each distinct request once (a row carrying it, and how many rows do); count flips × calls."""
    out = Impact(approximate=uses_arguments(engine))
    verdicts: dict[Any, Verdict] = {}
    for row, calls in groups:
        key = _key(row)
        verdicts[key] = None
        req = request_from_row(row)
        if req is None or row.get("decision") not in ("allow", "deny"):
            out.skipped += calls
            continue
        out.replayed += calls
        outcome = engine.decide(req)
        now = "allow" if outcome.allowed else "deny"
        if now == row["decision"]:
            continue
        flip = f"{row['decision']}→{now}"
        verdicts[key] = (req, flip, outcome)
        out.flips[flip] += calls
        out.by_user[(req.subject, flip)] += calls
        out.by_tool[(f"{req.server}:{req.name or '*'}", flip)] += calls
    return out, verdicts


def add_examples(out: Impact, verdicts: Mapping[Any, Verdict], rows: Iterable[Mapping[str, Any]],
                 max_examples: int = 20) -> None:
    """Append the rows (newest first) that flip as examples, until there are `max_examples`."""
    for row in rows:
        if len(out.examples) >= max_examples:
            return
        verdict = verdicts.get(_key(row))
        if verdict is None:
            continue
        req, flip, outcome = verdict
        out.examples.append({"ts": row.get("ts"), "subject": req.subject, "action": req.action,
                             "server": req.server, "name": req.name, "flip": flip,
                             "reason": outcome.statement.reason(), "decision_id": row.get("decision_id")})


def replay(engine: Engine, rows: Iterable[Mapping[str, Any]], max_examples: int = 20) -> Impact:
    """Decide every row's request under `engine`; count flips against the recorded decision.

    Real traffic repeats: each distinct (subject, roles, groups, action, server, tool or resource,
    recorded decision) is decided once and counted once per row that carries it. Examples are the
    first `max_examples` rows that flip, in row order (newest first, as the audit is read).
    """
    rows = rows if isinstance(rows, list) else list(rows)
    keys = [_key(row) for row in rows]
    sample = dict(zip(keys, rows, strict=True))  # one row per key: all of them replay alike
    out, verdicts = decide_groups(engine, ((sample[k], calls) for k, calls in Counter(keys).items()))
    if out.flips:
        add_examples(out, verdicts, rows, max_examples)
    return out


async def replay_recent(pool: asyncpg.Pool, engine: Engine, n: int, max_examples: int = 20) -> Impact:
    """Replay the newest `n` audited PDP decisions (the console page and `mcpgw policy impact`).

    One snapshot: Postgres counts the distinct requests, a worker thread decides each once, then
    the newest rows are paged (100, then 2,000 at a time) only until `max_examples` flips are found.
    """
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        grouped = await conn.fetch(GROUPED_SQL, n)
        out, verdicts = await asyncio.to_thread(decide_groups, engine, [(g, g["calls"]) for g in grouped])
        seen, size = 0, 100
        rows = await conn.fetch(FIRST_PAGE_SQL, min(n, size)) if out.flips else []
        while rows:
            add_examples(out, verdicts, rows, max_examples)
            seen += len(rows)
            if len(out.examples) >= max_examples or seen >= n:
                break
            size = 2_000
            rows = await conn.fetch(PAGE_SQL, min(n - seen, size), rows[-1]["ts"], rows[-1]["id"])
    return out
