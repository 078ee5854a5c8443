"""Policy → ordered statements → a Casbin model and policy lines (the engine of record).

Statements are ordered by (priority high→low, deny before allow, document order); Casbin's
priority effect takes the first matching line, so the Casbin priority of a statement is
`2 * (MAX_PRIORITY - priority) + (0 if deny else 1)` — non-negative, as Casbin requires, and deny
sorts first at equal priority. A final catch-all line carries `default_policy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pdp.policy.model import ALLOW, DENY, MAX_PRIORITY, MIN_PRIORITY, Condition, Policy

MODEL_TEXT = """\
[request_definition]
r = sub, obj, act, req

[policy_definition]
p = priority, sub, obj, act, cond, eft

[role_definition]
g = _, _

[policy_effect]
e = priority(p.eft) || deny

[matchers]
m = hasRole(r.req, p.sub) && actMatch(r.act, p.act) && segGlob(r.obj, p.obj) && ruleCond(r.req, p.cond)
"""


@dataclass(frozen=True)
class Statement:
    """One compiled allow/deny statement; `index` is its place in decision order."""

    index: int
    kind: str  # role | rule | default
    effect: str
    priority: int
    role: str | None = None  # role statements
    resource: str = "*"
    action: str = "*"
    rule: str | None = None  # rule name
    condition: Condition | None = field(default=None, compare=False)

    @property
    def cond_id(self) -> str:
        """The Casbin `cond` field: which statement's condition the matcher evaluates."""
        return f"s{self.index}"

    def casbin_priority(self) -> int:
        """Casbin priority (smaller wins): MAX_PRIORITY+1 is reserved below all rules for the default."""
        return 2 * (MAX_PRIORITY - self.priority) + (0 if self.effect == DENY else 1)

    def casbin_line(self) -> list[str]:
        """The `p` line for this statement."""
        sub = f"role:{self.role}" if self.kind == "role" else "*"
        return [str(self.casbin_priority()), sub, self.resource, self.action, self.cond_id, self.effect]

    def describe(self) -> dict[str, Any]:
        """The `statement` object of an AuthZEN answer."""
        if self.kind == "rule":
            return {"kind": "rule", "name": self.rule, "effect": self.effect, "priority": self.priority}
        if self.kind == "role":
            return {"kind": "role", "role": self.role, "resource": self.resource, "action": self.action,
                    "effect": self.effect, "priority": self.priority}
        return {"kind": "default", "effect": self.effect}

    def reason(self) -> str:
        """A short sentence safe to show an agent."""
        if self.kind == "rule":
            return f"{self.effect} by rule {self.rule!r}"
        if self.kind == "role":
            return f"allow by role {self.role!r} permission {self.action} on {self.resource}"
        return f"{self.effect} by default policy (no statement matched)"


@dataclass(frozen=True)
class Compiled:
    """Everything both decision paths need, derived from one Policy."""

    policy: Policy
    statements: tuple[Statement, ...]
    role_links: tuple[tuple[str, str], ...]  # Casbin `g` lines: (member, role)

    def casbin_lines(self) -> list[list[str]]:
        """All `p` lines in decision order."""
        return [s.casbin_line() for s in self.statements]


def compile_policy(policy: Policy) -> Compiled:
    """Order the policy's statements and derive Casbin role links."""
    raw: list[tuple[int, int, int, dict[str, Any]]] = []
    seq = 0
    for rule in policy.rules:
        raw.append((-rule.priority, 0 if rule.effect == DENY else 1, seq,
                    {"kind": "rule", "effect": rule.effect, "priority": rule.priority, "rule": rule.name,
                     "condition": rule.condition}))
        seq += 1
    for role in policy.roles.values():
        for perm in role.permissions:
            for action in perm.actions:
                raw.append((0, 1, seq, {"kind": "role", "effect": ALLOW, "priority": 0, "role": role.name,
                                        "resource": perm.resource, "action": action}))
                seq += 1
    raw.sort(key=lambda t: t[:3])
    statements = [Statement(index=i, **fields) for i, (*_, fields) in enumerate(raw)]
    # The default is one priority step below every rule: it decides only when nothing matches.
    statements.append(Statement(index=len(statements), kind="default", effect=policy.default_policy,
                                priority=MIN_PRIORITY - 1))
    links: list[tuple[str, str]] = []
    for user, roles in policy.user_roles.items():
        links.extend((f"user:{user}", f"role:{r}") for r in roles)
    for group, roles in policy.group_roles.items():
        links.extend((f"group:{group}", f"role:{r}") for r in roles)
    for role in policy.roles.values():
        links.extend((f"role:{role.name}", f"role:{parent}") for parent in role.inherits)
    return Compiled(policy, tuple(statements), tuple(links))
