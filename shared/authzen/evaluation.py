"""A single evaluation, both sides: the PEP builds the request and reads the answer strictly; the
PDP reads the request strictly and builds the answer.

Resources follow docs/architecture.md. When both `id` and `properties` name the server/item they
must agree: otherwise the audit trail could show one thing while the decision was about another.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.authzen.tables import (
    ACTIONS,
    NAME_PROPERTY,
    RESERVED_PREFIXES,
    TYPE_FOR_ACTION,
    BadInput,
    Resource,
    UnrepresentableName,
    WireError,
)

# -- the PEP's side: build the request, read the answer ---------------------------------------


def subject_to_wire(
    subject: str, roles: Sequence[str] = (), groups: Sequence[str] = (), scopes: Sequence[str] = (),
) -> dict[str, Any]:
    """AuthZEN subject for an authenticated principal."""
    return {
        "type": "user",
        "id": subject,
        "properties": {"roles": list(roles), "groups": list(groups), "scopes": list(scopes)},
    }


def evaluation_request(
    subject: dict[str, Any], action: str, resource: Resource,
    arguments: dict[str, Any] | None = None, facts: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Body of POST /access/v1/evaluation."""
    context: dict[str, Any] = dict(facts or {})
    if arguments is not None:
        context["arguments"] = arguments
    return {"subject": subject, "action": {"name": action}, "resource": resource.to_wire(), "context": context}


@dataclass(frozen=True)
class Decision:
    """One PDP answer as the gateway uses it."""

    allowed: bool
    decision_id: str | None = None
    policy_version: str | None = None
    reason: str | None = None
    statement: dict[str, Any] = field(default_factory=dict)


def parse_decision(body: Any) -> Decision:
    """Read one evaluation response strictly: anything but a boolean decision is an error."""
    if not isinstance(body, dict) or not isinstance(body.get("decision"), bool):
        raise WireError("PDP answer has no boolean 'decision'")
    ctx = body.get("context") or {}
    if not isinstance(ctx, dict):
        raise WireError("PDP answer 'context' is not an object")
    return Decision(
        allowed=body["decision"],
        decision_id=ctx.get("decision_id"),
        policy_version=ctx.get("policy_version"),
        reason=ctx.get("reason"),
        statement=ctx.get("statement") or {},
    )


# -- the PDP's side: read the request, build the answer ---------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One evaluation request as the PDP reads it."""

    subject: str
    action: str
    resource: Resource
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def arguments(self) -> dict[str, Any] | None:
        """The tool call's arguments, when the context carries them."""
        args = self.context.get("arguments")
        return args if isinstance(args, dict) else None


def decision_answer(allowed: bool, decision_id: str, version: str, reason: str,
                    statement: dict[str, Any]) -> dict[str, Any]:
    """The AuthZEN evaluation response body."""
    return {"decision": allowed, "context": {"decision_id": decision_id, "policy_version": version,
                                             "reason": reason, "statement": statement}}


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


def check_name(rtype: str, server: str, name: str | None, where: str) -> None:
    """Refuse (UnrepresentableName) a server or item name the policy cannot name."""
    if ":" in server:
        raise UnrepresentableName(f"{where}: server name {server!r} must not contain ':'")
    if name is None:
        return
    if rtype != "mcp_resource" and ":" in name:
        raise UnrepresentableName(f"{where}: name {name!r} must not contain ':'")
    if rtype == "mcp_tool" and name.startswith(RESERVED_PREFIXES):
        raise UnrepresentableName(f"{where}: tool name {name!r} must not start with 'resource/', 'prompt/' or 'method/'")


def parse_resource(value: Any, action: str, where: str = "resource") -> Resource:
    """The AuthZEN resource checked for `action`: its type, and id and properties agreeing."""
    res = _obj(value, where)
    rtype = _str(res.get("type"), f"{where}.type")
    expected = TYPE_FOR_ACTION[action]
    if rtype != expected:
        raise BadInput(f"{where}.type must be {expected!r} for action {action!r}, got {rtype!r}")
    props = _obj(res.get("properties") or {}, f"{where}.properties")
    rid = res.get("id")
    server = props.get("mcp_server")
    key = NAME_PROPERTY.get(rtype)
    name = props.get(key) if key is not None else None
    if key is None:
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
        raise BadInput(f"{where}.properties.{key} disagrees with {where}.id")
    server = _str(server if server is not None else id_server, f"{where}.properties.mcp_server")
    check_name(rtype, server, None, where)
    if key is not None:
        name = _str(name if name is not None else id_name, f"{where}.properties.{key}")
    check_name(rtype, server, name, where)
    return Resource(rtype, server, name)


def parse_context(value: Any, where: str = "context") -> dict[str, Any]:
    """The evaluation context; `arguments`, when present, must be an object."""
    ctx = _obj(value if value is not None else {}, where)
    if "arguments" in ctx and ctx["arguments"] is not None:
        _obj(ctx["arguments"], f"{where}.arguments")
    return ctx


def parse_evaluation(body: Any, defaults: dict[str, Any] | None = None, where: str = "") -> Evaluation:
    """One evaluation request (fields missing from `body` come from batch `defaults`), strictly."""
    item = _obj(body, where or "body")
    merged = {**(defaults or {}), **item}
    p = f"{where}." if where else ""
    for key in ("subject", "action", "resource"):
        if key not in merged:
            raise BadInput(f"{p}{key} is required")
    sid, roles, groups = parse_subject(merged["subject"], f"{p}subject")
    action = parse_action(merged["action"], f"{p}action")
    resource = parse_resource(merged["resource"], action, f"{p}resource")
    ctx = parse_context(merged.get("context"), f"{p}context")
    return Evaluation(sid, action, resource, roles, groups, ctx)
