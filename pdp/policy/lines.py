"""Where each compiled statement came from in the YAML: its path and 1-based line (for `explain`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pdp.policy.compile import Compiled, Statement
from pdp.policy.yamlload import LList, LMap, load_with_lines


@dataclass(frozen=True)
class Source:
    """A statement's place in the policy document."""

    path: str
    line: int | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"path": self.path, "line": self.line, "text": self.text}


def statement_sources(text: str, compiled: Compiled) -> dict[int, Source]:
    """Statement index → where it was written (rules by name, permissions by resource and action)."""
    doc, _ = load_with_lines(text)
    lines = text.splitlines()
    out: dict[int, Source] = {}
    if not isinstance(doc, LMap):
        return out

    def source(path: str, line: int | None) -> Source:
        body = lines[line - 1].strip() if line and 0 < line <= len(lines) else ""
        return Source(path, line, body)

    rules = doc.get("rules")
    roles = doc.get("roles")
    for s in compiled.statements:
        if s.kind == "rule" and isinstance(rules, LList):
            for i, rule in enumerate(rules):
                if isinstance(rule, LMap) and rule.get("name") == s.rule:
                    out[s.index] = source(f"rules[{i}]", rules.item_lines[i])
                    break
        elif s.kind == "role" and isinstance(roles, LMap):
            found = _permission(roles, s)
            if found is not None:
                out[s.index] = source(*found)
        elif s.kind == "default":
            line = doc.key_lines.get("default_policy")
            out[s.index] = source("default_policy", line) if line else Source("default_policy", None,
                                                                               "(default: deny)")
    return out


def _permission(roles: LMap, s: Statement) -> tuple[str, int] | None:
    body = roles.get(s.role)
    perms = body.get("permissions") if isinstance(body, LMap) else None
    if not isinstance(perms, LList):
        return None
    for j, perm in enumerate(perms):
        if not isinstance(perm, LMap) or perm.get("resource") != s.resource:
            continue
        actions = perm.get("actions")
        if actions == s.action or (isinstance(actions, list) and s.action in actions):
            return f"roles.{s.role}.permissions[{j}]", perms.item_lines[j]
    return None
