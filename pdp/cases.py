"""Policy test cases (`mcpgw policy test`, what-if, explain) → the decision request they describe."""

from __future__ import annotations

from typing import Any

from pdp.policy import Request
from pdp.wire import parse_evaluation
from shared.authzen import NAME_PROPERTY, TYPE_FOR_ACTION


def case_request(case: dict[str, Any], where: str) -> Request:
    """The decision request a test case (or explain / what-if input) describes; BadInput if malformed."""
    return parse_evaluation(evaluation_body(case), where=where)[0]


def evaluation_body(case: dict[str, Any]) -> dict[str, Any]:
    """The AuthZEN evaluation body for a test case / explain request."""
    server, _, name = str(case.get("resource", "")).partition(":")
    action = case.get("action")
    rtype = TYPE_FOR_ACTION.get(str(action), "mcp_server")  # an unknown action is refused by the parser
    resource: dict[str, Any] = {"type": rtype, "id": case.get("resource")}
    if rtype == "mcp_resource":  # URIs contain ':' themselves; give the parts explicitly
        resource = {"type": rtype, "properties": {"mcp_server": server, NAME_PROPERTY[rtype]: name}}
    body = {"subject": {"type": "user", "id": case.get("subject"),
                        "properties": {"roles": case.get("roles", []), "groups": case.get("groups", [])}},
            "action": {"name": action}, "resource": resource,
            "context": {"arguments": case["arguments"]} if "arguments" in case else {}}
    return body


CASE_KEYS = {"name", "subject", "roles", "groups", "resource", "action", "arguments", "expect"}
