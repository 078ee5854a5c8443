"""Tool-name cache and the "unknown tool" answer detectors (gateway/upstream/toolcache.py)."""

from __future__ import annotations

import pytest

from gateway.upstream.toolcache import ToolNames, rpc_unknown_tool, says_unknown_tool

TOOLS = [{"name": "echo"}, {"name": "add"}, {"title": "nameless"}, {"name": 7}]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("ttl", "advance", "generation", "expected"),
    [
        (30, 0, 1, frozenset({"echo", "add"})),  # fresh, same generation; odd entries skipped
        (30, 29.9, 1, frozenset({"echo", "add"})),
        (30, 30, 1, None),  # expired
        (30, 0, 2, None),  # the registry reloaded since
        (0, 0, 1, None),  # cache off
    ],
)
def test_tools_respect_ttl_and_generation(ttl, advance, generation, expected):
    clock = Clock()
    names = ToolNames(ttl, clock)
    names.store("alpha", 1, TOOLS)
    clock.now += advance
    found = names.tools("alpha", generation)
    assert (None if found is None else frozenset(found)) == expected
    assert names.tools("beta", 1) is None


def test_forget_drops_the_entry():
    names = ToolNames(30, Clock())
    names.store("alpha", 1, TOOLS)
    names.forget("alpha")
    names.forget("never-seen")
    assert names.tools("alpha", 1) is None


def test_forget_drops_the_catalogs_kept_per_declared_capabilities_too():
    names = ToolNames(30, Clock())
    for key in ("alpha", "alpha\x00sampling", "alpha\x00elicitation,sampling", "alphabet", "alphabet\x00sampling"):
        names.store(key, 1, TOOLS)
    names.forget("alpha")
    assert [k for k in ("alpha", "alpha\x00sampling", "alpha\x00elicitation,sampling") if names.tools(k, 1)] == []
    assert names.tools("alphabet", 1) and names.tools("alphabet\x00sampling", 1)  # another backend's


def _result(text, is_error=True):
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


@pytest.mark.parametrize(
    ("result", "tool", "expected"),
    [
        (_result("Unknown tool: nope"), "nope", True),  # the official SDK's answer
        (_result("unknown tool: NOPE "), "nope", True),
        (_result("Unknown tool: other"), "nope", False),
        (_result("Unknown tool: nope", is_error=False), "nope", False),
        (_result("the database is down"), "nope", False),
        ({"content": [], "isError": True}, "nope", False),
        ({"content": [_result("x")["content"][0]] * 2, "isError": True}, "nope", False),
        ("not a dict", "nope", False),
    ],
)
def test_says_unknown_tool(result, tool, expected):
    assert says_unknown_tool(result, tool) is expected


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (-32602, "Unknown tool: nope", True),
        (-32602, "Invalid params: unknown tool 'nope'", True),
        (-32602, "argument 'x' missing", False),
        (-32603, "Unknown tool: nope", False),
        (-32602, "Unknown tool: other", False),
    ],
)
def test_rpc_unknown_tool(code, message, expected):
    assert rpc_unknown_tool(code, message, "nope") is expected


def test_a_listing_begun_before_forget_is_not_stored() -> None:
    names = ToolNames(60.0)
    epoch, caps_epoch = names.epoch("a"), names.epoch("a\x00sampling")
    names.forget("a")  # the backend announced a change while both listings were in flight
    names.store("a", 0, [{"name": "old"}], epoch)
    names.store("a\x00sampling", 0, [{"name": "old"}], caps_epoch)
    assert names.tools("a", 0) is None and names.tools("a\x00sampling", 0) is None
    names.store("a", 0, [{"name": "new"}], names.epoch("a"))  # begun after it
    assert set(names.tools("a", 0) or {}) == {"new"}
