"""Pure functions behind the console pages: errors by line, semantic diff, what-if, stored tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from pdp.policy import (
    Engine,
    Policy,
    PolicyError,
    PolicyInvalid,
    Request,
    load_engine,
    parse_policy,
)


@dataclass(frozen=True)
class Checked:
    """A policy text after validation: the engine when valid, else every error."""

    engine: Engine | None
    errors: tuple[PolicyError, ...] = ()


def check(text: str, version: str = "draft") -> Checked:
    """Validate and compile `text`."""
    try:
        return Checked(load_engine(text, version, cache_size=10_000))
    except PolicyInvalid as exc:
        return Checked(None, tuple(exc.errors))


@dataclass
class Line:
    """One source line with the errors reported on it."""

    number: int
    text: str
    errors: list[str] = field(default_factory=list)


def lines_with_errors(text: str, errors: tuple[PolicyError, ...]) -> tuple[list[Line], list[str]]:
    """Each line of `text` with its errors, plus the errors that have no line (shown above)."""
    lines = [Line(i, t) for i, t in enumerate(text.splitlines() or [""], start=1)]
    loose = []
    for err in errors:
        message = f"{err.path}: {err.message}" if err.path else err.message
        if err.line and 1 <= err.line <= len(lines):
            lines[err.line - 1].errors.append(message)
        else:
            loose.append(message)
    return lines, loose


def _perms(policy: Policy, role: str) -> set[tuple[str, str]]:
    return {(p.resource, a) for p in policy.roles[role].permissions for a in p.actions}


def semantic_diff(old: Policy, new: Policy) -> list[tuple[str, str]]:
    """What changed in meaning, as (kind, sentence) pairs: roles, permissions, bindings, rules, default."""
    out: list[tuple[str, str]] = []
    for name in sorted(new.roles.keys() - old.roles.keys()):
        out.append(("role added", f"role {name!r} added"))
    for name in sorted(old.roles.keys() - new.roles.keys()):
        out.append(("role removed", f"role {name!r} removed"))
    for name in sorted(old.roles.keys() & new.roles.keys()):
        granted_before, granted_after = _perms(old, name), _perms(new, name)
        for res, act in sorted(granted_after - granted_before):
            out.append(("permission widened", f"role {name!r} may now {act} on {res}"))
        for res, act in sorted(granted_before - granted_after):
            out.append(("permission narrowed", f"role {name!r} may no longer {act} on {res}"))
        if set(old.roles[name].inherits) != set(new.roles[name].inherits):
            out.append(("inheritance changed", f"role {name!r} inherits {sorted(new.roles[name].inherits)} "
                                               f"(was {sorted(old.roles[name].inherits)})"))
    for label, a, b in (("user", old.user_roles, new.user_roles), ("group", old.group_roles, new.group_roles)):
        for who in sorted(a.keys() | b.keys()):
            before: set[str] = set(a.get(who, ()))
            after: set[str] = set(b.get(who, ()))
            for role in sorted(after - before):
                out.append(("binding added", f"{label} {who!r} bound to role {role!r}"))
            for role in sorted(before - after):
                out.append(("binding removed", f"{label} {who!r} no longer bound to role {role!r}"))
    old_rules = {r.name: r for r in old.rules}
    new_rules = {r.name: r for r in new.rules}
    for name in [n for n in new_rules if n not in old_rules]:
        r = new_rules[name]
        out.append(("rule added", f"rule {name!r} added ({r.effect}, priority {r.priority})"))
    for name in [n for n in old_rules if n not in new_rules]:
        out.append(("rule removed", f"rule {name!r} removed"))
    for name in [n for n in new_rules if n in old_rules]:
        a_rule, b_rule = old_rules[name], new_rules[name]
        if a_rule.priority != b_rule.priority:
            out.append(("rule priority changed", f"rule {name!r} priority {a_rule.priority} → {b_rule.priority}"))
        if a_rule.effect != b_rule.effect:
            out.append(("rule effect changed", f"rule {name!r} {a_rule.effect} → {b_rule.effect}"))
        if a_rule.condition != b_rule.condition:
            out.append(("rule condition changed", f"rule {name!r} condition changed"))
    if old.default_policy != new.default_policy:
        out.append(("default changed", f"default policy {old.default_policy} → {new.default_policy}"))
    return out


def split_list(value: str) -> tuple[str, ...]:
    """Comma- or space-separated form input as a tuple of non-empty items."""
    return tuple(p for p in value.replace(",", " ").split() if p)


def decide(engine: Engine, req: Request) -> dict[str, Any]:
    """One decision with its deciding statement, for display."""
    outcome = engine.decide(req)
    return {"decision": "allow" if outcome.allowed else "deny", "reason": outcome.statement.reason(),
            "statement": outcome.statement.describe(),
            "effective_roles": sorted(engine.effective_roles(req.subject, req.roles, req.groups))}


def run_tests(engine: Engine, text: str) -> list[tuple[str, bool, str]]:
    """Run stored cases (the `mcpgw policy test` format): (name, passed, detail) each. Empty text: none."""
    from pdp.cases import CASE_KEYS, case_request
    from pdp.wire import BadInput

    if not text.strip():
        return []
    try:
        cases = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [("tests", False, f"tests are not valid YAML: {exc}")]
    cases = cases.get("cases") if isinstance(cases, dict) else cases
    if not isinstance(cases, list):
        return [("tests", False, "tests must be a list of cases (or a mapping with 'cases')")]
    results = []
    for i, case in enumerate(cases):
        name = str(case.get("name", f"case {i}")) if isinstance(case, dict) else f"case {i}"
        try:
            if not isinstance(case, dict) or case.get("expect") not in ("allow", "deny"):
                raise BadInput("each case needs 'expect: allow|deny'")
            if unknown := sorted(set(map(str, case)) - CASE_KEYS):
                raise BadInput(f"unknown key(s) {', '.join(unknown)}")
            outcome = engine.decide(case_request(case, f"cases[{i}]"))
        except BadInput as exc:
            results.append((name, False, str(exc)))
            continue
        got = "allow" if outcome.allowed else "deny"
        results.append((name, got == case["expect"], f"expected {case['expect']}, got {got} "
                                                      f"({outcome.statement.reason()})"))
    return results


__all__ = ["Checked", "Line", "check", "decide", "lines_with_errors", "parse_policy", "run_tests",
           "semantic_diff", "split_list"]
