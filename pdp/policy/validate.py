"""Policy YAML → `Policy`, or every problem found, each with its path and line.

Nothing is ignored: an unknown key, a wrong type, a bad pattern or regex, an unknown role or an
inheritance cycle is an error, because an ignored condition key silently widens a rule.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from pdp.policy.checker import (
    Checker,
    PolicyError,
    PolicyInvalid,
    check_pattern,
    check_pointer,
    join,
    json_problem,
    kind,
)
from pdp.policy.model import (
    ALLOW,
    ARG_OPS,
    DENY,
    MAX_PRIORITY,
    MIN_PRIORITY,
    NORMALIZERS,
    ArgCondition,
    Condition,
    Permission,
    Policy,
    Role,
    Rule,
)
from pdp.policy.naming import full_regex, normalize
from pdp.policy.yamlload import LList, LMap, YamlProblem, load_with_lines
from shared.authzen import ACTIONS

TOP_KEYS = ("roles", "user_roles", "group_roles", "rules", "default_policy")
ROLE_KEYS = ("permissions", "inherits", "description")
PERMISSION_KEYS = ("resource", "actions")
RULE_KEYS = ("name", "description", "condition", "action", "priority")
CONDITION_KEYS = (
    "user", "role", "group", "action", "mcp_server", "tool_name", "tool_name_pattern", "arguments",
)
ACTION_NAMES = (*ACTIONS, "*")

__all__ = ["PolicyError", "PolicyInvalid", "parse_policy"]


def parse_policy(text: str) -> Policy:
    """Validate policy YAML text and build the Policy; raise PolicyInvalid with every error."""
    try:
        doc, duplicates = load_with_lines(text)
    except YamlProblem as exc:
        raise PolicyInvalid([PolicyError("", exc.line, str(exc))]) from None
    c = Checker()
    for key, line in duplicates:
        c.err(key, line, f"duplicate key {key!r}")
    if doc is None:
        c.err("", 1, "the policy document is empty")
        raise PolicyInvalid(c.errors)
    top = c.mapping(doc, "", 1, TOP_KEYS)
    if top is None:
        raise PolicyInvalid(c.errors)
    lines = top.key_lines
    roles = _roles(c, top.get("roles", LMap()), lines.get("roles"))
    known = set(roles)
    user_roles = _assignments(c, top.get("user_roles"), "user_roles", lines.get("user_roles"), known)
    group_roles = _assignments(c, top.get("group_roles"), "group_roles", lines.get("group_roles"), known)
    rules = _rules(c, top.get("rules"), lines.get("rules"), known)
    default = top.get("default_policy", DENY)
    if default not in (ALLOW, DENY):
        c.err("default_policy", lines.get("default_policy"), f"must be 'allow' or 'deny', got {default!r}")
    _check_cycles(c, roles, top)
    if c.errors:
        raise PolicyInvalid(c.errors)
    return Policy(roles=roles, user_roles=user_roles, group_roles=group_roles, rules=rules, default_policy=default)


def _roles(c: Checker, value: Any, line: int | None) -> dict[str, Role]:
    m = c.mapping(value, "roles", line, None)
    if m is None:
        return {}
    out: dict[str, Role] = {}
    for name, body in m.items():
        path, line = join("roles", name), m.key_lines.get(name)
        if c.string(name, path, line) is None:
            continue
        if body is None:  # `viewer:` with nothing under it: a role with no permissions
            out[name] = Role(name)
            continue
        rm = c.mapping(body, path, line, ROLE_KEYS)
        if rm is None:
            continue
        perms: list[Permission] = []
        plist = rm.get("permissions", LList())
        if not isinstance(plist, LList):
            c.err(f"{path}.permissions", rm.key_lines.get("permissions"), f"expected a list, got {kind(plist)}")
            plist = LList()
            plist.item_lines = []
        for i, item in enumerate(plist):
            p = _permission(c, item, f"{path}.permissions[{i}]", plist.item_lines[i])
            if p is not None:
                perms.append(p)
        inherits: tuple[str, ...] = ()
        if "inherits" in rm:
            inherits = c.strings(rm["inherits"], f"{path}.inherits", rm.key_lines["inherits"]) or ()
        if "description" in rm:
            c.string(rm["description"], f"{path}.description", rm.key_lines["description"])
        out[name] = Role(name, inherits, tuple(perms))
    for name, role in out.items():
        for parent in role.inherits:
            if parent not in out:
                c.err(f"roles.{name}.inherits", m[name].key_lines.get("inherits"), f"unknown role {parent!r}")
    return out


def _permission(c: Checker, value: Any, path: str, line: int | None) -> Permission | None:
    pm = c.mapping(value, path, line, PERMISSION_KEYS)
    if pm is None:
        return None
    ok = True
    for key in PERMISSION_KEYS:
        if key not in pm:
            c.err(path, pm.line, f"missing required key {key!r}")
            ok = False
    if not ok:
        return None
    resource = c.string(pm["resource"], f"{path}.resource", pm.key_lines["resource"])
    if resource is not None and (problem := check_pattern(resource)):
        c.err(f"{path}.resource", pm.key_lines["resource"], problem)
        resource = None
    actions = _actions(c, pm["actions"], f"{path}.actions", pm.key_lines["actions"], one_ok=False)
    if resource is None or actions is None:
        return None
    return Permission(resource, actions)


def _actions(c: Checker, value: Any, path: str, line: int | None, one_ok: bool) -> tuple[str, ...] | None:
    names = c.strings(value, path, line, one_ok=one_ok)
    if names is None:
        return None
    if not names:
        c.err(path, line, "must name at least one action")
        return None
    bad = [a for a in names if a not in ACTION_NAMES]
    if bad:
        c.err(path, line, f"unknown action(s) {', '.join(map(repr, bad))} (allowed: {', '.join(ACTION_NAMES)})")
        return None
    return names


def _assignments(c: Checker, value: Any, path: str, line: int | None, known: set[str]) -> dict[str, tuple[str, ...]]:
    if value is None and line is None:
        return {}
    m = c.mapping(value, path, line, None)
    if m is None:
        return {}
    out: dict[str, tuple[str, ...]] = {}
    for who, roles in m.items():
        p, ln = join(path, who), m.key_lines.get(who)
        if c.string(who, p, ln) is None:
            continue
        names = c.strings(roles, p, ln)
        if names is None:
            continue
        for r in names:
            if r not in known:
                c.err(p, ln, f"unknown role {r!r}")
        out[who] = names
    return out


def _rules(c: Checker, value: Any, line: int | None, known: set[str]) -> tuple[Rule, ...]:
    if value is None and line is None:
        return ()
    if not isinstance(value, LList):
        c.err("rules", line, f"expected a list, got {kind(value)}")
        return ()
    out: list[Rule] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        path, ln = f"rules[{i}]", value.item_lines[i]
        rm = c.mapping(item, path, ln, RULE_KEYS)
        if rm is None:
            continue
        missing = [k for k in ("name", "condition", "action") if k not in rm]
        for k in missing:
            c.err(path, rm.line, f"missing required key {k!r}")
        if missing:
            continue
        kl = rm.key_lines
        name = c.string(rm["name"], f"{path}.name", kl["name"])
        if name is not None and name in names:
            c.err(f"{path}.name", kl["name"], f"duplicate rule name {name!r}")
        names.add(name or "")
        effect = rm["action"]
        if effect not in (ALLOW, DENY):
            c.err(f"{path}.action", kl["action"], f"must be 'allow' or 'deny', got {effect!r}")
        priority = rm.get("priority", 0)
        if isinstance(priority, bool) or not isinstance(priority, int):
            c.err(f"{path}.priority", kl.get("priority"), f"expected an integer, got {kind(priority)}")
            priority = 0
        elif not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            c.err(f"{path}.priority", kl.get("priority"), f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}")
        if "description" in rm:
            c.string(rm["description"], f"{path}.description", kl["description"])
        cond = _condition(c, rm["condition"], f"{path}.condition", kl["condition"], known)
        if name is not None and cond is not None and effect in (ALLOW, DENY):
            if effect == DENY and cond.arguments:  # holds however the backend may read the value (values.py)
                cond = replace(cond, arguments=tuple(replace(a, by_value=True) for a in cond.arguments))
            out.append(Rule(name, cond, effect, priority))
    return tuple(out)


def _condition(c: Checker, value: Any, path: str, line: int | None, known: set[str]) -> Condition | None:
    m = c.mapping(value, path, line, CONDITION_KEYS)
    if m is None:
        return None
    kl = m.key_lines
    n = len(c.errors)
    fields: dict[str, Any] = {}
    for key, field in (("user", "users"), ("role", "roles"), ("group", "groups")):
        if key in m:
            fields[field] = c.strings(m[key], f"{path}.{key}", kl[key], one_ok=True, non_empty=True)
    for r in fields.get("roles") or ():
        if r not in known:
            c.err(f"{path}.role", kl["role"], f"unknown role {r!r}")
    if "action" in m:
        fields["actions"] = _actions(c, m["action"], f"{path}.action", kl["action"], one_ok=True)
    for key in ("mcp_server", "tool_name"):
        if key in m and (glob := c.string(m[key], f"{path}.{key}", kl[key])) is not None:
            if ":" in glob:
                c.err(f"{path}.{key}", kl[key], f"{glob!r} must not contain ':'")
            fields[key] = glob
    if "tool_name_pattern" in m:
        fields["tool_name_pattern"] = _regex(c, m["tool_name_pattern"], f"{path}.tool_name_pattern", kl["tool_name_pattern"])
    if "arguments" in m:
        fields["arguments"] = _arguments(c, m["arguments"], f"{path}.arguments", kl["arguments"])
    if len(c.errors) > n:
        return None
    return Condition(**fields)


def _regex(c: Checker, value: Any, path: str, line: int | None) -> str | None:
    pattern = c.string(value, path, line)
    if pattern is None:
        return None
    try:
        full_regex(pattern)  # the flags decisions use
    except re.error as exc:
        c.err(path, line, f"invalid regular expression {pattern!r}: {exc}")
        return None
    return pattern


def _arguments(c: Checker, value: Any, path: str, line: int | None) -> tuple[ArgCondition, ...]:
    m = c.mapping(value, path, line, None)
    if m is None:
        return ()
    if not m:
        # `arguments: {}` constrains nothing; accepting it would read like a condition that is not there.
        c.err(path, line, "must name at least one JSON pointer (an empty mapping constrains nothing)")
        return ()
    out: list[ArgCondition] = []
    for pointer, spec in m.items():
        p, ln = join(path, pointer), m.key_lines.get(pointer)
        if c.string(pointer, p, ln) is None:
            continue
        if problem := check_pointer(pointer):
            c.err(p, ln, problem)
            continue
        sm = c.mapping(spec, p, ln, (*ARG_OPS, "normalize"))
        if sm is None:
            continue
        if any(k not in ARG_OPS and k != "normalize" for k in sm):
            continue  # already reported as an unknown key
        ops = [k for k in sm if k in ARG_OPS]
        if len(ops) != 1:
            c.err(p, ln, f"needs exactly one of {', '.join(ARG_OPS)}, got {len(ops)}")
            continue
        op, operand = ops[0], sm[ops[0]]
        steps: tuple[str, ...] = ()
        if "normalize" in sm:
            found = _normalize(c, sm["normalize"], f"{p}.normalize", sm.key_lines.get("normalize", ln), op)
            if found is None:
                continue
            steps = found
        if op == "in" and not isinstance(operand, LList):
            c.err(f"{p}.in", ln, f"expected a list, got {kind(operand)}")
            continue
        if op == "in" and not operand:
            c.err(f"{p}.in", ln, "must list at least one value (an empty list never matches)")
            continue
        if op in ("equals", "in") and (problem := json_problem(operand)):
            c.err(f"{p}.{op}", ln, problem)
            continue
        if op == "absent" and not isinstance(operand, bool):
            c.err(f"{p}.absent", ln, f"expected true or false, got {kind(operand)}")
            continue
        if op == "pattern" and _regex(c, operand, f"{p}.pattern", ln) is None:
            continue
        value = _plain(operand)
        if op == "equals":
            value = normalize(value, steps)
        elif op == "in":
            value = [normalize(v, steps) for v in value]
        out.append(ArgCondition(pointer, op, value, steps))
    return tuple(out)


def _normalize(c: Checker, value: Any, path: str, line: int | None, op: str) -> tuple[str, ...] | None:
    names = c.strings(value, path, line, one_ok=True, non_empty=True)
    if names is None:
        return None
    bad = [n for n in names if n not in NORMALIZERS]
    if bad:
        c.err(path, line, f"unknown normalisation(s) {', '.join(map(repr, bad))} (allowed: {', '.join(NORMALIZERS)})")
        return None
    if op == "absent":
        c.err(path, line, "has no meaning with 'absent' (nothing is compared)")
        return None
    return tuple(names)


def _plain(value: Any) -> Any:
    # Strip line bookkeeping so conditions compare and hash like plain JSON.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _check_cycles(c: Checker, roles: dict[str, Role], top: LMap) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for parent in roles[name].inherits:
            if parent not in roles:
                continue
            if state.get(parent) == 1:
                cycle = " -> ".join([*trail[trail.index(parent):], parent])
                role_map = top.get("roles")
                ln = role_map.key_lines.get(parent) if isinstance(role_map, LMap) else None
                c.err(f"roles.{parent}.inherits", ln, f"inheritance cycle: {cycle}")
            elif state.get(parent) is None:
                visit(parent, [*trail, parent])
        state[name] = 2

    for name in roles:
        if name not in state:
            visit(name, [name])
