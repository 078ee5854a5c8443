"""Pure parts of the `/mcp` change watcher: per-kind digests, changed kinds, honoured filters."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mcp import listen


def test_fingerprint_ignores_order_but_not_content() -> None:
    a, b = {"name": "a"}, {"name": "b", "description": "x"}
    assert listen.fingerprint([a, b]) == listen.fingerprint([b, a])
    assert listen.fingerprint([a, b]) != listen.fingerprint([a, {"name": "b", "description": "y"}])


@pytest.mark.parametrize(("before", "after", "expected"), [
    ({"t": "1", "p": "1"}, {"t": "1", "p": "1"}, []),
    ({"t": "1", "p": "1"}, {"t": "2", "p": "1"}, ["t"]),
    ({"t": "1", "p": "1"}, {"t": "2", "p": "2"}, ["p", "t"]),
    ({}, {"r": "1"}, ["r"]),
])
def test_changed_kinds(before: dict[str, str], after: dict[str, str], expected: list[str]) -> None:
    assert listen.changed(before, after) == expected


@pytest.mark.parametrize(("wanted", "expected"), [
    ({}, {}),
    ({"toolsListChanged": True}, {"toolsListChanged": True}),
    ({"promptsListChanged": True, "resourcesListChanged": False}, {"promptsListChanged": True}),
    ({"resourcesListChanged": True, "resourceSubscriptions": ["a://b"], "taskIds": ["t"]},
     {"resourcesListChanged": True}),
    ({"toolsListChanged": "yes"}, {}),
])
def test_honoured_filter(wanted: dict[str, Any], expected: dict[str, bool]) -> None:
    assert listen.honoured(wanted) == expected


def test_kinds_of_maps_filter_keys_to_notifications() -> None:
    assert listen.kinds_of({"promptsListChanged": True, "resourcesListChanged": True}) == {
        "notifications/prompts/list_changed", "notifications/resources/list_changed"}
    assert listen.kinds_of({}) == set()
