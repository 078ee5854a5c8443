"""The one table classifying client messages (gateway/mcp/methods.py): every method decided, listed,
always allowed or refused; unknown methods decided as `call_method`."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mcp import methods, protocol
from shared.authzen import Resource

S = "srv"


def checks(kind: str, method: str, params: dict[str, Any] | None = None) -> list[tuple[str, str, str | None]]:
    plan = methods.plan(S, kind, method, params or {})
    assert plan.kind == "decided"
    return [(action, r.type, r.name) for action, r in plan.checks]


@pytest.mark.parametrize(("method", "params", "expected"), [
    ("tools/call", {"name": "echo", "arguments": {}}, [("invoke_tool", "mcp_tool", "echo")]),
    ("resources/read", {"uri": "file:///a"}, [("read_resource", "mcp_resource", "file:///a")]),
    ("resources/subscribe", {"uri": "file:///a"}, [("read_resource", "mcp_resource", "file:///a")]),
    ("resources/unsubscribe", {"uri": "file:///a"}, [("read_resource", "mcp_resource", "file:///a")]),
    ("prompts/get", {"name": "p"}, [("get_prompt", "mcp_prompt", "p")]),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "p"}}, [("get_prompt", "mcp_prompt", "p")]),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///{path}"}},
     [("read_resource", "mcp_resource", "file:///{path}")]),
    ("initialize", {}, [("list_servers", "mcp_server", None)]),
    ("server/discover", {}, [("list_servers", "mcp_server", None)]),
    ("logging/setLevel", {"level": "debug"}, [("list_servers", "mcp_server", None)]),
    ("subscriptions/listen", {"notifications": {"toolsListChanged": True}}, [("list_servers", "mcp_server", None)]),
    ("subscriptions/listen", {"notifications": {"resourceSubscriptions": ["memo://a", "memo://b"]}},
     [("list_servers", "mcp_server", None), ("read_resource", "mcp_resource", "memo://a"),
      ("read_resource", "mcp_resource", "memo://b")]),
    ("tasks/get", {"taskId": "1"}, [("call_method", "mcp_method", "tasks/get")]),
    ("sampling/createMessage", {}, [("call_method", "mcp_method", "sampling/createMessage")]),
])
def test_requests_are_decided_on_their_target(method: str, params: dict[str, Any], expected: list[Any]) -> None:
    assert checks("request", method, params) == expected


def test_unknown_methods_are_marked_other() -> None:
    assert methods.plan(S, "request", "x/y", {}).other
    assert not methods.plan(S, "request", "tools/call", {"name": "a"}).other
    assert methods.method_resource(S, "x/y") == Resource("mcp_method", S, "x/y")


@pytest.mark.parametrize("method", ["tools/list", "prompts/list", "resources/list", "resources/templates/list"])
def test_lists_are_filtered(method: str) -> None:
    assert methods.plan(S, "request", method, {}).kind == "listed"


@pytest.mark.parametrize(("kind", "method"), [
    ("request", "ping"), ("response", ""), ("notification", "notifications/initialized"),
    ("notification", "notifications/cancelled"), ("notification", "notifications/progress"),
    ("notification", "notifications/roots/list_changed"),
])
def test_bookkeeping_is_always_allowed(kind: str, method: str) -> None:
    assert methods.plan(S, kind, method, {}).kind == "always"


@pytest.mark.parametrize("method", [
    "tools/call", "resources/read", "resources/subscribe", "prompts/get", "completion/complete", "initialize",
    "ping", "tools/list", "server/discover", "subscriptions/listen", "tasks/get", "anything",
])
def test_a_request_method_sent_as_a_notification_is_refused(method: str) -> None:
    with pytest.raises(protocol.RpcFailure) as exc:
        methods.plan(S, "notification", method, {"name": "echo"})
    assert exc.value.status == 400 and "notification" in exc.value.message


def test_unknown_notifications_are_decided_as_methods() -> None:
    assert checks("notification", "notifications/custom") == [("call_method", "mcp_method", "notifications/custom")]


@pytest.mark.parametrize(("method", "params", "fragment"), [
    ("tools/call", {}, "params.name"),
    ("tools/call", {"name": ""}, "params.name"),
    ("resources/read", {"uri": 3}, "params.uri"),
    ("resources/read", {"uri": "file:///public/../secret"}, "normal form"),
    ("resources/subscribe", {"uri": "file:///public/%2e%2e/secret"}, "normal form"),
    ("completion/complete", {}, "params.ref"),
    ("tools/call", {"name": "evil:tool"}, "tool name"),
    ("tools/call", {"name": "resource/fetch"}, "tool name"),
    ("tools/call", {"name": "echo\n"}, "tool name"),
    ("prompts/get", {"name": "a:b"}, "prompt name"),
    ("completion/complete", {"ref": {"type": "ref/prompt", "name": "a:b"}}, "prompt name"),
    ("completion/complete", {"ref": {"type": "ref/other"}}, "ref.type"),
    ("completion/complete", {"ref": {"type": "ref/resource", "uri": "file:///a/../{p}"}}, "normal form"),
    ("subscriptions/listen", {"notifications": {"resourceSubscriptions": "memo://a"}}, "list"),
    ("subscriptions/listen", {"notifications": {"resourceSubscriptions": ["file:///a/../b"]}}, "normal form"),
])
def test_malformed_targets_are_invalid_params(method: str, params: dict[str, Any], fragment: str) -> None:
    with pytest.raises(protocol.RpcFailure) as exc:
        methods.plan(S, "request", method, params)
    assert exc.value.code == protocol.INVALID_PARAMS and fragment in exc.value.message


@pytest.mark.parametrize("method", ["a:b", "x\ny"])
def test_methods_that_cannot_name_a_resource_are_not_found(method: str) -> None:
    with pytest.raises(protocol.RpcFailure) as exc:
        methods.plan(S, "request", method, {})
    assert exc.value.code == protocol.METHOD_NOT_FOUND
