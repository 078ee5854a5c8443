"""AuthZEN request bodies → policy `Request`s (pure; every problem is a BadInput naming the field).

Resources follow docs/architecture.md. When both `id` and `properties` name the server/tool they
must agree: otherwise the audit trail could show one thing while the decision was about another.
"""

from __future__ import annotations

from typing import Any

from pdp.policy.model import Request
from pdp.policy.naming import RESERVED_PREFIXES
from shared.authzen import ACTIONS, SERVER_ACTIONS

TYPE_FOR_ACTION = {
    **{a: "mcp_server" for a in SERVER_ACTIONS},
    "invoke_tool": "mcp_tool",
    "read_resource": "mcp_resource",
    "get_prompt": "mcp_prompt",
    "call_method": "mcp_method",
}
KIND_FOR_TYPE = {"mcp_server": "server", "mcp_tool": "tool", "mcp_resource": "resource", "mcp_prompt": "prompt",
                 "mcp_method": "method"}
NAME_PROPERTY = {"mcp_tool": "tool", "mcp_resource": "uri", "mcp_prompt": "prompt", "mcp_method": "method"}


class BadInput(ValueError):
    """A request body that does not follow the contract (→ HTTP 400)."""


class UnrepresentableName(BadInput):
    """A well-formed resource whose server or item name cannot name a policy resource.

    Alone it is a 400; inside a batch it is that item's deny, so one hostile name cannot fail
    the decisions of every other item (a whole catalog).
    """


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadInput(f"{where} must be an object")
    return value


def _str(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise BadInput(f"{where} must be a non-empty string")
    return value


def _strs(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise BadInput(f"{where} must be a list of strings")
    return tuple(value)


def parse_subject(value: Any, where: str = "subject") -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(id, token roles, groups) of an AuthZEN subject."""
    subject = _obj(value, where)
    sid = _str(subject.get("id"), f"{where}.id")
    props = _obj(subject.get("properties") or {}, f"{where}.properties")
    return sid, _strs(props.get("roles"), f"{where}.properties.roles"), _strs(props.get("groups"), f"{where}.properties.groups")


def parse_action(value: Any, where: str = "action") -> str:
    """The action name, one of the known actions."""
    name = _str(_obj(value, where).get("name"), f"{where}.name")
    if name not in ACTIONS:
        raise BadInput(f"{where}.name {name!r} is not one of {', '.join(ACTIONS)}")
    return name


def parse_resource(value: Any, action: str, where: str = "resource") -> tuple[str, str, str | None]:
    """(kind, server, name) of an AuthZEN resource checked for `action`."""
    res = _obj(value, where)
    rtype = _str(res.get("type"), f"{where}.type")
    expected = TYPE_FOR_ACTION[action]
    if rtype != expected:
        raise BadInput(f"{where}.type must be {expected!r} for action {action!r}, got {rtype!r}")
    props = _obj(res.get("properties") or {}, f"{where}.properties")
    rid = res.get("id")
    server = props.get("mcp_server")
    name = props.get(NAME_PROPERTY[rtype]) if rtype in NAME_PROPERTY else None
    if rtype == "mcp_server":
        id_server, id_name = (_str(rid, f"{where}.id") if rid is not None else None), None
    elif rid is not None:
        id_server, sep, id_name = _str(rid, f"{where}.id").partition(":")
        if not sep:
            raise BadInput(f"{where}.id must be 'SERVER:NAME'")
    else:
        id_server = id_name = None
    if server is not None and id_server is not None and server != id_server:
        raise BadInput(f"{where}.properties.mcp_server disagrees with {where}.id")
    if name is not None and id_name is not None and name != id_name:
        raise BadInput(f"{where}.properties.{NAME_PROPERTY[rtype]} disagrees with {where}.id")
    server = _str(server if server is not None else id_server, f"{where}.properties.mcp_server")
    if ":" in server:
        raise UnrepresentableName(f"{where}: server name {server!r} must not contain ':'")
    if rtype == "mcp_server":
        return "server", server, None
    name = _str(name if name is not None else id_name, f"{where}.properties.{NAME_PROPERTY[rtype]}")
    if rtype != "mcp_resource" and ":" in name:
        raise UnrepresentableName(f"{where}: name {name!r} must not contain ':'")
    if rtype == "mcp_tool" and name.startswith(RESERVED_PREFIXES):
        raise UnrepresentableName(f"{where}: tool name {name!r} must not start with 'resource/', 'prompt/' or 'method/'")
    return KIND_FOR_TYPE[rtype], server, name


def parse_context(value: Any, where: str = "context") -> dict[str, Any]:
    """The evaluation context; `arguments`, when present, must be an object."""
    ctx = _obj(value if value is not None else {}, where)
    if "arguments" in ctx and ctx["arguments"] is not None:
        _obj(ctx["arguments"], f"{where}.arguments")
    return ctx


def parse_evaluation(body: Any, defaults: dict[str, Any] | None = None, where: str = "") -> tuple[Request, dict[str, Any]]:
    """One evaluation (fields missing from `body` come from batch `defaults`) → (Request, context)."""
    item = _obj(body, where or "body")
    merged = {**(defaults or {}), **item}
    p = f"{where}." if where else ""
    for key in ("subject", "action", "resource"):
        if key not in merged:
            raise BadInput(f"{p}{key} is required")
    sid, roles, groups = parse_subject(merged["subject"], f"{p}subject")
    action = parse_action(merged["action"], f"{p}action")
    kind, server, name = parse_resource(merged["resource"], action, f"{p}resource")
    ctx = parse_context(merged.get("context"), f"{p}context")
    return Request(sid, action, server, kind, name, roles, groups, ctx.get("arguments")), ctx
