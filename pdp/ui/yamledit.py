"""Edits of policy YAML that keep its comments and layout (ruamel round trip): blocks, removals."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from ruamel.yaml import YAML

from pdp.policy.model import MAX_PRIORITY

BLOCK_PREFIX = "emergency-block: "
GLOB_CHARS = set("*?[]{}:")


def _yaml() -> YAML:
    y = YAML()
    y.preserve_quotes = True
    y.width = 4096
    return y


def _load(text: str) -> Any:
    doc = _yaml().load(text)
    if not isinstance(doc, dict):
        raise ValueError("the policy is not a mapping")
    return doc


def _dump(doc: Any) -> str:
    buf = io.StringIO()
    _yaml().dump(doc, buf)
    return buf.getvalue()


def block_condition(kind: str, value: str) -> dict[str, Any]:
    """The rule condition that blocks a user, a server, or a tool (`SERVER:TOOL` or a tool name)."""
    value = value.strip()
    if not value:
        raise ValueError("name what to block")
    if kind == "user":
        return {"user": value}
    parts = value.split(":", 1) if kind == "tool" else [value]
    if any(GLOB_CHARS & set(p) or not p for p in parts):
        raise ValueError(f"{value!r}: give an exact name (no wildcards, at most one ':' as SERVER:TOOL)")
    if kind == "server":
        return {"mcp_server": value}
    if kind == "tool":
        return {"mcp_server": parts[0], "tool_name": parts[1]} if len(parts) == 2 else {"tool_name": parts[0]}
    raise ValueError("kind must be user, server or tool")


def add_block(text: str, kind: str, value: str, reason: str) -> str:
    """`text` with a highest-priority deny rule for the blocked user/server/tool first in `rules`."""
    if not reason.strip():
        raise ValueError("a reason is required")
    doc = _load(text)
    rule = {"name": f"{BLOCK_PREFIX}{kind} {value.strip()}", "description": reason.strip(),
            "condition": block_condition(kind, value), "action": "deny", "priority": MAX_PRIORITY}
    if doc.get("rules") is None:
        doc["rules"] = []
    doc["rules"].insert(0, rule)
    return _dump(doc)


def blocks(text: str) -> list[tuple[str, str]]:
    """(name, reason) of the emergency-block rules in a (valid) policy text."""
    import yaml

    doc = yaml.safe_load(text) or {}
    return [(str(r["name"]), str(r.get("description", ""))) for r in doc.get("rules") or []
            if isinstance(r, dict) and str(r.get("name", "")).startswith(BLOCK_PREFIX)]


def remove_rule(text: str, name: str) -> str:
    """`text` without the rule called `name` (lifting a block goes through review as a draft)."""
    doc = _load(text)
    rules = doc.get("rules") or []
    keep = [r for r in rules if not (isinstance(r, dict) and r.get("name") == name)]
    if len(keep) == len(rules):
        raise ValueError(f"no rule named {name!r}")
    rules[:] = keep
    return _dump(doc)


def remove_grants(text: str, permissions: Iterable[tuple[str, str, str]],
                  bindings: Iterable[tuple[str, str]]) -> str:
    """`text` without the given (role, resource, action) permissions and (user, role) bindings."""
    doc = _load(text)
    drop = set(permissions)
    for role_name, role in (doc.get("roles") or {}).items():
        perms = role.get("permissions") if isinstance(role, dict) else None
        if not perms:
            continue
        for perm in list(perms):
            actions = perm.get("actions") or []
            kept = [a for a in actions if (role_name, perm.get("resource"), a) not in drop]
            if not kept:
                perms.remove(perm)
            elif len(kept) != len(actions):
                actions[:] = kept
    users = doc.get("user_roles") or {}
    for user, role in bindings:
        held = users.get(user)
        if held is not None and role in held:
            held.remove(role)
            if not held:
                del users[user]
    return _dump(doc)
