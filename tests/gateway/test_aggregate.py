"""Aggregation of tools across servers and the MCP content shape of a multi-server invocation."""

from __future__ import annotations

import json

import pytest

from gateway.aggregate import (
    SERVERS_META_KEY,
    aggregate_tools,
)

SCHEMA_A = {"type": "object", "properties": {"q": {"type": "string"}}}
PER_SERVER = {
    "beta": [{"name": "search", "description": "beta search", "inputSchema": {"type": "object"}}],
    "alpha": [
        {"name": "search", "description": "alpha search", "inputSchema": SCHEMA_A, "annotations": {"readOnlyHint": True}},
        {"name": "delete", "description": "", "inputSchema": SCHEMA_A},
        {"description": "nameless, ignored"},
    ],
    "gamma": [{"name": "ping"}],
}


def test_aggregate_merges_by_name_first_server_wins() -> None:
    tools = aggregate_tools(PER_SERVER)
    assert [t["name"] for t in tools] == ["delete", "ping", "search"]
    search = tools[2]
    assert search["description"] == "alpha search" and search["inputSchema"] == SCHEMA_A
    assert search["annotations"] == {"readOnlyHint": True}
    assert search["_meta"][SERVERS_META_KEY] == ["alpha", "beta"]
    assert tools[1]["inputSchema"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("allowed", "expected"),
    [
        ({("alpha", "search")}, {"search": ["alpha"]}),
        ({("beta", "search"), ("gamma", "ping")}, {"search": ["beta"], "ping": ["gamma"]}),
        (set(), {}),
    ],
)
def test_aggregate_filters_to_allowed_pairs(allowed, expected) -> None:
    tools = aggregate_tools(PER_SERVER, allowed)
    assert {t["name"]: t["_meta"][SERVERS_META_KEY] for t in tools} == expected


def test_aggregate_does_not_mutate_input() -> None:
    before = json.dumps(PER_SERVER, sort_keys=True)
    aggregate_tools(PER_SERVER)
    assert json.dumps(PER_SERVER, sort_keys=True) == before
