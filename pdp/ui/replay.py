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


# The newest PDP decisions, only the columns a replay needs, by one backward scan of the partial
# index audit_events_pdp_decisions_idx (migration 0310). `groups` is jsonb, which asyncpg hands
# over as text: equal lists give equal text, so it serves as part of a replay key unparsed.
REPLAY_SQL = ("SELECT subject, roles, action, mcp_server, tool, resource, decision, extra->'groups' AS groups, "
              "ts, decision_id FROM audit_events WHERE event_type = 'policy_decision' AND service = 'pdp' "
              "ORDER BY ts DESC, id DESC LIMIT $1")


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


def replay(engine: Engine, rows: Iterable[Mapping[str, Any]], max_examples: int = 20) -> Impact:
    """Decide every row's request under `engine`; count flips against the recorded decision.

    Real traffic repeats: each distinct (subject, roles, groups, action, server, tool or resource,
    recorded decision) is decided once and its flips count once per row that carries it. Examples
    are the newest `max_examples` rows that flip, in row order (newest first from REPLAY_SQL).
    """
    out = Impact(approximate=uses_arguments(engine))
    rows = rows if isinstance(rows, list) else list(rows)
    keys = [_key(row) for row in rows]
    verdicts: dict[tuple[Any, ...], tuple[Request, str, Outcome] | None] = {}
    sample = dict(zip(keys, rows, strict=True))  # one row per key: all of them replay alike
    for key, calls in Counter(keys).items():
        row = sample[key]
        req = request_from_row(row)
        if req is None or row.get("decision") not in ("allow", "deny"):
            out.skipped += calls
            verdicts[key] = None
            continue
        out.replayed += calls
        outcome = engine.decide(req)
        now = "allow" if outcome.allowed else "deny"
        if now == row["decision"]:
            verdicts[key] = None
            continue
        flip = f"{row['decision']}→{now}"
        verdicts[key] = (req, flip, outcome)
        out.flips[flip] += calls
        out.by_user[(req.subject, flip)] += calls
        out.by_tool[(f"{req.server}:{req.name or '*'}", flip)] += calls
    for row, key in zip(rows, keys, strict=True):
        verdict = verdicts[key]
        if verdict is None:
            continue
        if len(out.examples) >= max_examples:
            break
        req, flip, outcome = verdict
        out.examples.append({"ts": row.get("ts"), "subject": req.subject, "action": req.action,
                             "server": req.server, "name": req.name, "flip": flip,
                             "reason": outcome.statement.reason(), "decision_id": row.get("decision_id")})
    return out


async def replay_recent(pool: asyncpg.Pool, engine: Engine, n: int) -> Impact:
    """Replay the newest `n` audited PDP decisions (the console page and `mcpgw policy impact`).

    One index scan on the event loop; the replay runs in a worker thread.
    """
    rows = await pool.fetch(REPLAY_SQL, n)
    return await asyncio.to_thread(replay, engine, rows)
