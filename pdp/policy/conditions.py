"""Whether a rule's condition holds for a request: one pure function shared by both paths."""

from __future__ import annotations

from collections.abc import Callable

from pdp.policy.model import Condition, Request
from pdp.policy.naming import arg_holds, glob_match, regex_full_match


def condition_holds(cond: Condition, req: Request, has_role: Callable[[str], bool]) -> bool:
    """All keys present in `cond` hold; `has_role` answers for effective (inherited) roles."""
    if cond.users is not None and req.subject not in cond.users:
        return False
    if cond.actions is not None and "*" not in cond.actions and req.action not in cond.actions:
        return False
    if cond.mcp_server is not None and not glob_match(req.server, cond.mcp_server):
        return False
    if cond.tool_name is not None or cond.tool_name_pattern is not None:
        tool = req.tool
        if tool is None:
            return False
        if cond.tool_name is not None and not glob_match(tool, cond.tool_name):
            return False
        if cond.tool_name_pattern is not None and not regex_full_match(tool, cond.tool_name_pattern):
            return False
    if cond.groups is not None and not any(g in cond.groups for g in req.groups):
        return False
    if cond.roles is not None and not any(has_role(r) for r in cond.roles):
        return False
    return all(arg_holds(a, req.arguments) for a in cond.arguments)
