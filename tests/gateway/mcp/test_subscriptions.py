"""Pure parts of the `/mcp` resource-subscription hub: URI union per backend, recipients, renaming."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mcp.subscriptions import recipients, updated, uris_by_server

SUBS: dict[Any, set[tuple[str, str]]] = {
    ("alice", "s1"): {("docs", "file:///a"), ("wiki", "page://x")},
    ("bob", "s2"): {("docs", "file:///a"), ("docs", "file:///b")},
    ("bob", "listen:1"): set(),
}


def test_uris_by_server_is_the_union_of_subscribers() -> None:
    assert uris_by_server(SUBS) == {"docs": {"file:///a", "file:///b"}, "wiki": {"page://x"}}
    assert uris_by_server({}) == {}


@pytest.mark.parametrize(("server", "uri", "expected"), [
    ("docs", "file:///a", [("alice", "s1"), ("bob", "s2")]),
    ("docs", "file:///b", [("bob", "s2")]),
    ("wiki", "file:///a", []),  # same URI, other backend: nobody
    ("docs", "file:///c", []),
])
def test_recipients_are_exactly_the_uri_subscribers(server: str, uri: str, expected: list[Any]) -> None:
    assert recipients(SUBS, server, uri) == expected


@pytest.mark.parametrize(("subscription", "params"), [
    (None, {"uri": "mcpgw://docs/file:///a"}),
    ("l-1", {"uri": "mcpgw://docs/file:///a", "_meta": {"io.modelcontextprotocol/subscriptionId": "l-1"}}),
])
def test_update_is_renamed_and_tagged(subscription: Any, params: dict[str, Any]) -> None:
    assert updated("docs", "file:///a", subscription) == {
        "jsonrpc": "2.0", "method": "notifications/resources/updated", "params": params}
