"""Impact: replay audited PDP decisions against a draft and report what flips (pure)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from pdp.policy import Engine, Request
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


# The replay query selects `extra->'groups' AS groups` (jsonb arrives as text from asyncpg).
REPLAY_SQL = ("SELECT ts, subject, roles, action, mcp_server, tool, resource, decision, decision_id, "
              "extra->'groups' AS groups FROM audit_events WHERE event_type = 'policy_decision' AND service = 'pdp' "
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


def replay(engine: Engine, rows: Iterable[Mapping[str, Any]], max_examples: int = 20) -> Impact:
    """Decide every row's request under `engine`; count flips against the recorded decision."""
    out = Impact(approximate=uses_arguments(engine))
    for row in rows:
        req = request_from_row(row)
        if req is None or row.get("decision") not in ("allow", "deny"):
            out.skipped += 1
            continue
        out.replayed += 1
        outcome = engine.decide(req)
        now = "allow" if outcome.allowed else "deny"
        if now == row["decision"]:
            continue
        flip = f"{row['decision']}→{now}"
        out.flips[flip] += 1
        out.by_user[(req.subject, flip)] += 1
        out.by_tool[(f"{req.server}:{req.name or '*'}", flip)] += 1
        if len(out.examples) < max_examples:
            out.examples.append({"ts": row.get("ts"), "subject": req.subject, "action": req.action,
                                 "server": req.server, "name": req.name, "flip": flip,
                                 "reason": outcome.statement.reason(), "decision_id": row.get("decision_id")})
    return out
