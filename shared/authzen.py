"""The versioned wire contract between gateway and PDP (OpenID AuthZEN Authorization API 1.0).

Both services build and read decision messages only through these helpers, so the shapes live
in one place. See docs/architecture.md for the table of actions and resource types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WIRE_VERSION = "authzen-1.0"
EVALUATION_PATH = "/access/v1/evaluation"
EVALUATIONS_PATH = "/access/v1/evaluations"
SEARCH_RESOURCE_PATH = "/access/v1/search/resource"
CONFIGURATION_PATH = "/.well-known/authzen-configuration"

ACTIONS = (
    "list_servers",
    "list_tools",
    "server_info",
    "invoke_tool",
    "read_resource",
    "get_prompt",
    "call_method",
)
SERVER_ACTIONS = ("list_servers", "list_tools", "server_info")
SEMANTICS = ("execute_all", "deny_on_first_deny", "permit_on_first_permit")


@dataclass(frozen=True)
class Resource:
    """What is being accessed: a server, a tool, a resource URI or a prompt of one server."""

    type: str  # mcp_server | mcp_tool | mcp_resource | mcp_prompt
    server: str
    name: str | None = None  # tool name, resource URI or prompt name

    @property
    def id(self) -> str:
        return self.server if self.name is None else f"{self.server}:{self.name}"

    def to_wire(self) -> dict[str, Any]:
        props: dict[str, Any] = {"mcp_server": self.server}
        if self.type == "mcp_tool":
            props["tool"] = self.name
        elif self.type == "mcp_resource":
            props["uri"] = self.name
        elif self.type == "mcp_prompt":
            props["prompt"] = self.name
        elif self.type == "mcp_method":
            props["method"] = self.name
        return {"type": self.type, "id": self.id, "properties": props}


def server_resource(server: str) -> Resource:
    return Resource("mcp_server", server)


def tool_resource(server: str, tool: str) -> Resource:
    return Resource("mcp_tool", server, tool)


def subject_to_wire(
    subject: str, roles: tuple[str, ...] | list[str] = (), groups: tuple[str, ...] | list[str] = (),
    scopes: tuple[str, ...] | list[str] = (),
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


class WireError(ValueError):
    """A PDP answer that does not follow the contract; callers treat it as deny."""


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
