"""The vocabulary of the wire: version, paths, actions, resource types and how a resource is named."""

from __future__ import annotations

from dataclasses import dataclass
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
# Postgres NOTIFY channel on which the PDP announces an activated policy version (payload: the
# stored version number); gateways flush their decision caches on it.
POLICY_CHANNEL = "mcpgw_policy"


def version_label(version: int) -> str:
    """The `policy_version` string (in every answer's context) for a stored version number."""
    return f"v{version}"


# action -> the one resource type it is asked about
TYPE_FOR_ACTION = {
    **{a: "mcp_server" for a in SERVER_ACTIONS},
    "invoke_tool": "mcp_tool",
    "read_resource": "mcp_resource",
    "get_prompt": "mcp_prompt",
    "call_method": "mcp_method",
}
RESOURCE_TYPES = tuple(dict.fromkeys(TYPE_FOR_ACTION.values()))
# resource type -> the policy's kind of resource
KIND_FOR_TYPE = {"mcp_server": "server", "mcp_tool": "tool", "mcp_resource": "resource", "mcp_prompt": "prompt",
                 "mcp_method": "method"}
# resource type -> the `properties` key that carries the item's name (servers have none)
NAME_PROPERTY = {"mcp_tool": "tool", "mcp_resource": "uri", "mcp_prompt": "prompt", "mcp_method": "method"}
# A tool name may start with none of these: the policy names resources, prompts and methods so.
RESERVED_PREFIXES = ("resource/", "prompt/", "method/")


def searchable(rtype: str, action: str) -> bool:
    """True for the (resource type, action) pairs a resource search answers."""
    return (rtype == "mcp_tool" and action == "invoke_tool") or (rtype == "mcp_server" and action in SERVER_ACTIONS)


@dataclass(frozen=True)
class Resource:
    """What is being accessed: a server, a tool, a resource URI, a prompt or a method of one server."""

    type: str  # one of RESOURCE_TYPES
    server: str
    name: str | None = None  # tool name, resource URI, prompt name or method

    @property
    def id(self) -> str:
        """The AuthZEN resource id: `SERVER` or `SERVER:NAME`."""
        return self.server if self.name is None else f"{self.server}:{self.name}"

    def to_wire(self) -> dict[str, Any]:
        """The AuthZEN resource object (id and properties name the same thing)."""
        props: dict[str, Any] = {"mcp_server": self.server}
        key = NAME_PROPERTY.get(self.type)
        if key is not None:
            props[key] = self.name
        return {"type": self.type, "id": self.id, "properties": props}


def resource_for(action: str, server: str, name: str | None = None) -> Resource:
    """The resource `action` is asked about: its type comes from TYPE_FOR_ACTION, never restated."""
    return Resource(TYPE_FOR_ACTION[action], server, name)


def server_resource(server: str) -> Resource:
    """A server-level resource."""
    return Resource("mcp_server", server)


def tool_resource(server: str, tool: str) -> Resource:
    """One tool of one server."""
    return Resource("mcp_tool", server, tool)


class WireError(ValueError):
    """A PDP answer that does not follow the contract; the gateway treats it as deny."""


class BadInput(ValueError):
    """A request to the PDP that does not follow the contract (→ HTTP 400)."""


class UnrepresentableName(BadInput):
    """A well-formed resource whose server or item name cannot name a policy resource.

    Alone it is a 400; inside a batch it is that item's deny, so one hostile name cannot fail
    the decisions of every other item (a whole catalog).
    """
