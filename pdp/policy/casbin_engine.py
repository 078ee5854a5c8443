"""Build a stock pycasbin Enforcer from a compiled policy (used for `explain`, tests and bench).

Custom matcher functions: `segGlob` (anchored, `*` never crosses `:`; stock keyMatch/globMatch
over-grant), `hasRole` (the request's user, groups and token roles via Casbin's role manager),
`actMatch`, and `ruleCond` (a rule's condition, including argument conditions, evaluated with the
same pure functions the fast path uses).
"""

from __future__ import annotations

from typing import Any

import casbin
from casbin.persist.adapter import Adapter

from pdp.policy.compile import MODEL_TEXT, Compiled, Statement
from pdp.policy.conditions import condition_holds
from pdp.policy.model import Request
from pdp.policy.naming import glob_match, resource_string


class _MemoryAdapter(Adapter):  # type: ignore[misc]
    def __init__(self, compiled: Compiled) -> None:
        self.compiled = compiled

    def load_policy(self, model: Any) -> None:
        for line in self.compiled.casbin_lines():
            model.add_policy("p", "p", line)
        for member, role in self.compiled.role_links:
            model.add_policy("g", "g", [member, role])


class CasbinRequest:
    """The `r.req` value: principals for `hasRole`, and the request for rule conditions."""

    __slots__ = ("principals", "request")

    def __init__(self, request: Request) -> None:
        self.request = request
        self.principals = (
            f"user:{request.subject}",
            *(f"group:{g}" for g in request.groups),
            *(f"role:{r}" for r in request.roles),
        )


def build_enforcer(compiled: Compiled) -> casbin.Enforcer:
    """A Casbin enforcer whose answers define the policy's meaning."""
    model = casbin.Enforcer.new_model(text=MODEL_TEXT)
    enforcer = casbin.Enforcer(model, _MemoryAdapter(compiled))
    rm = enforcer.get_role_manager()
    # Casbin stops role chains at 10 hops by default; our inheritance has no depth limit.
    rm.max_hierarchy_level = len(compiled.policy.roles) + 2
    enforcer.build_role_links()
    by_cond = {s.cond_id: s for s in compiled.statements}

    def has_role(req: CasbinRequest, sub: str) -> bool:
        return sub == "*" or any(rm.has_link(p, sub) for p in req.principals)

    def rule_cond(req: CasbinRequest, cond_id: str) -> bool:
        stmt = by_cond[cond_id]
        if stmt.condition is None:
            return True
        return condition_holds(stmt.condition, req.request,
                               lambda role: has_role(req, f"role:{role}"))

    enforcer.add_function("hasRole", has_role)
    enforcer.add_function("ruleCond", rule_cond)
    enforcer.add_function("actMatch", lambda act, pact: pact == "*" or act == pact)
    enforcer.add_function("segGlob", glob_match)
    return enforcer


def casbin_decide(enforcer: casbin.Enforcer, compiled: Compiled, request: Request) -> Statement:
    """The deciding statement according to stock `enforce_ex`."""
    allowed, explain = enforcer.enforce_ex(request.subject, resource_string(request), request.action,
                                           CasbinRequest(request))
    if not explain:
        raise RuntimeError("Casbin found no matching line; the default line should always match")
    stmt = compiled.statements[int(explain[4][1:])]
    if (stmt.effect == "allow") != allowed:
        raise RuntimeError("Casbin effect and deciding line disagree")
    return stmt
