"""Aggregation of tools across servers and the MCP content shape of a multi-server invocation."""

from __future__ import annotations

import json

import pytest

from gateway.aggregate import (
    SERVERS_META_KEY,
    aggregate_tools,
    invocation_content,
    servers_offering,
    summary_text,
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


def test_servers_offering() -> None:
    assert servers_offering(PER_SERVER, "search") == ["alpha", "beta"]
    assert servers_offering(PER_SERVER, "nope") == []


@pytest.mark.parametrize(
    ("ok", "total", "failed", "text"),
    [
        (2, 3, 1, "'t' succeeded on 2/3 servers (1 failed)"),
        (3, 3, 0, "'t' succeeded on 3/3 servers"),
        (0, 1, 1, "'t' succeeded on 0/1 servers (1 failed)"),
    ],
)
def test_summary_text(ok, total, failed, text) -> None:
    assert summary_text("t", ok, total, failed) == text


@pytest.mark.parametrize(("successful", "is_error"), [(0, True), (1, False)])
def test_invocation_content(successful, is_error) -> None:
    outcome = {
        "total_servers": 2, "successful": successful, "failed": 2 - successful,
        "results": {"a": {"content": []}} if successful else {}, "errors": {"b": "boom"},
        "execution_time_ms": 3.5,
    }
    body = invocation_content("t", {"x": 1}, outcome)
    assert body["isError"] is is_error
    text, resource = body["content"]
    assert text == {"type": "text", "text": summary_text("t", successful, 2, 2 - successful)}
    assert resource["resource"]["uri"] == "gateway://results/t"
    details = json.loads(resource["resource"]["text"])
    assert details["errors"] == {"b": "boom"} and details["parameters"] == {"x": 1}
