"""Every client→server MCP message, classified in one table: what must be decided before it passes. Pure.

A message is one of:
  decided  — the PDP is asked about named (action, resource) pairs first; any deny refuses it;
  listed   — forwarded, and the answer's items are filtered by policy (tools/list, …);
  always   — harmless bookkeeping (ping, the client's own notifications, responses);
  refused  — never forwarded: a request method sent as a notification, a malformed target.
A method the table does not know is decided as `call_method` on `mcp:{server}:method/{method}`
(docs/policy.md): refused unless policy grants it explicitly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from gateway.mcp import admission, protocol, uris
from shared.authzen import TYPE_FOR_ACTION, Resource, resource_for, server_resource

Kind = Literal["decided", "listed", "always"]
OTHER_ACTION = "call_method"
SEE_SERVER = "list_servers"  # "may see the server at all": the same action GET /mcp/servers filters on

# request method -> (action, params key naming the target, target is a URI)
GUARDED = {
    "tools/call": ("invoke_tool", "name", False),
    "resources/read": ("read_resource", "uri", True),
    "resources/subscribe": ("read_resource", "uri", True),
    "resources/unsubscribe": ("read_resource", "uri", True),
    "prompts/get": ("get_prompt", "name", False),
}
LISTED = frozenset({"tools/list", "prompts/list", "resources/list", "resources/templates/list"})
# Opening a conversation with a server (or changing its log level) needs only the right to see it.
SERVER_LEVEL = frozenset({"initialize", "server/discover", "logging/setLevel"})
ALWAYS = frozenset({"ping"})
# Notifications a client sends on its own behalf; they carry no target and ask for nothing.
CLIENT_NOTIFICATIONS = frozenset({
    "notifications/initialized", "notifications/cancelled", "notifications/progress",
    "notifications/roots/list_changed",
})
SPECIAL = frozenset({"completion/complete", "subscriptions/listen"})
KNOWN_REQUESTS = frozenset(GUARDED) | LISTED | SERVER_LEVEL | ALWAYS | SPECIAL


@dataclass(frozen=True)
class Plan:
    """What must hold before a message is forwarded: every `checks` pair allowed (for `decided`)."""

    kind: Kind
    checks: tuple[tuple[str, Resource], ...] = field(default=())
    other: bool = False  # decided as an unknown method: a deny reads as "method not found"


def method_resource(server: str, method: str) -> Resource:
    """The policy resource of a method the table does not classify."""
    return resource_for(OTHER_ACTION, server, method)


def plan(server: str, kind: str, method: str, params: Mapping[str, Any]) -> Plan:
    """The plan for one client message on `server`; RpcFailure when it is refused outright."""
    if kind == "response":
        return Plan("always")  # an answer to the backend's own sampling / elicitation / roots request
    if kind == "notification":
        if method in CLIENT_NOTIFICATIONS:
            return Plan("always")
        if method in KNOWN_REQUESTS or not method.startswith("notifications/"):
            raise protocol.RpcFailure(
                protocol.INVALID_REQUEST, f"'{method}' is a request: send it with an id, not as a notification",
                status=400)
        return _other(server, method)
    if method in ALWAYS:
        return Plan("always")
    if method in LISTED:
        return Plan("listed")
    if method in SERVER_LEVEL:
        return Plan("decided", ((SEE_SERVER, server_resource(server)),))
    if method in GUARDED:
        action, key, is_uri = GUARDED[method]
        name = target(params, key, uri=is_uri)
        if not is_uri:
            _nameable(TYPE_FOR_ACTION[action], name)
        return Plan("decided", ((action, resource_for(action, server, name)),))
    if method == "completion/complete":
        return Plan("decided", (completion_check(server, params),))
    if method == "subscriptions/listen":
        return Plan("decided", listen_checks(server, params))
    return _other(server, method)


def _other(server: str, method: str) -> Plan:
    if ":" in method or not method.isprintable():
        raise protocol.RpcFailure(protocol.METHOD_NOT_FOUND, "Method not found")
    return Plan("decided", ((OTHER_ACTION, method_resource(server, method)),), other=True)


def target(params: Mapping[str, Any], key: str, *, uri: bool = False, template: bool = False) -> str:
    """The named target of a guarded call (−32602 if missing; a URI must be in normal form)."""
    value = params.get(key)
    if not isinstance(value, str) or not value:
        raise protocol.RpcFailure(protocol.INVALID_PARAMS, f"params.{key} must be a non-empty string")
    if uri:
        why = uris.refusal(value, template=template)
        if why is not None:
            raise protocol.RpcFailure(protocol.INVALID_PARAMS, f"params.{key}: {why}")
    return value


def _nameable(rtype: str, name: str) -> str:
    """A tool or prompt name the gateway lists (admission.py); −32602 for one it leaves out."""
    why = admission.why_not("tool" if rtype == "mcp_tool" else "prompt", name)
    if why is not None:
        raise protocol.RpcFailure(protocol.INVALID_PARAMS, f"{why}: no such {rtype[4:]} is offered through the gateway")
    return name


def completion_check(server: str, params: Mapping[str, Any]) -> tuple[str, Resource]:
    """completion/complete is decided like what it completes: a prompt, or a resource template."""
    ref = params.get("ref")
    if not isinstance(ref, dict):
        raise protocol.RpcFailure(protocol.INVALID_PARAMS, "params.ref must be an object")
    if ref.get("type") == "ref/prompt":
        return "get_prompt", resource_for("get_prompt", server, _nameable("mcp_prompt", target(ref, "name")))
    if ref.get("type") == "ref/resource":
        return "read_resource", resource_for("read_resource", server, target(ref, "uri", uri=True, template=True))
    raise protocol.RpcFailure(protocol.INVALID_PARAMS, "params.ref.type must be 'ref/prompt' or 'ref/resource'")


def listen_checks(server: str, params: Mapping[str, Any]) -> tuple[tuple[str, Resource], ...]:
    """subscriptions/listen: the right to see the server, and to read every URI it subscribes to."""
    checks: list[tuple[str, Resource]] = [(SEE_SERVER, server_resource(server))]
    wanted = params.get("notifications")
    subscribed = wanted.get("resourceSubscriptions") if isinstance(wanted, dict) else None
    if subscribed is None:
        return tuple(checks)
    if not isinstance(subscribed, list):
        raise protocol.RpcFailure(protocol.INVALID_PARAMS, "resourceSubscriptions must be a list of URIs")
    for i, uri in enumerate(subscribed):
        if not isinstance(uri, str):
            raise protocol.RpcFailure(protocol.INVALID_PARAMS, f"resourceSubscriptions[{i}] must be a string")
        checks.append(("read_resource", resource_for("read_resource", server, target({"uri": uri}, "uri", uri=True))))
    return tuple(checks)
