"""Least privilege from real traffic (pure): what no allowed call used in the window."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from pdp.policy import Engine
from shared.jsonutil import loads

# Grouping by the statement object is cheaper than by three extracted fields (one jsonb compare).
USED_SQL = ("SELECT subject, extra->'statement' AS statement FROM audit_events "
            "WHERE event_type = 'policy_decision' AND service = 'pdp' AND decision = 'allow' "
            "AND ts > now() - make_interval(days => $1) GROUP BY 1, 2")


async def used_grants(pool: asyncpg.Pool, days: int) -> list[dict[str, Any]]:
    """(subject, role, resource, action) of every role permission that decided an allow in `days`."""
    out = []
    for row in await pool.fetch(USED_SQL, days):
        st = loads(row["statement"]) if isinstance(row["statement"], str) else None
        if isinstance(st, dict) and st.get("kind") == "role":
            out.append({"subject": row["subject"], "role": st.get("role"), "resource": st.get("resource"),
                        "action": st.get("action")})
    return out


def unused(engine: Engine, used: Iterable[Mapping[str, Any]]) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(role, resource, action) permissions that decided no allow, and (user, role) bindings whose role
    (or a role it inherits) decided none of that user's allows. `used` rows: subject, role, resource,
    action as recorded in the PDP's audited deciding statement."""
    rows = list(used)
    used_perms = {(r["role"], r["resource"], r["action"]) for r in rows}
    used_by = {(r["subject"], r["role"]) for r in rows}
    policy = engine.compiled.policy
    perms = [(s.role, s.resource, s.action) for s in engine.compiled.statements
             if s.kind == "role" and s.role is not None and (s.role, s.resource, s.action) not in used_perms]
    closure = {name: _closure(policy.roles, name) for name in policy.roles}
    bindings = [(user, role) for user, roles in policy.user_roles.items() for role in roles
                if not any((user, r) in used_by for r in closure.get(role, {role}))]
    return perms, bindings


def _closure(roles: Mapping[str, Any], name: str) -> set[str]:
    seen, todo = set(), [name]
    while todo:
        cur = todo.pop()
        if cur in seen or cur not in roles:
            continue
        seen.add(cur)
        todo.extend(roles[cur].inherits)
    return seen
