"""Table tests for gateway.mcp.catalog: merging, broadcast tools, resolution, paging, URIs."""

from __future__ import annotations

import pytest

from gateway.mcp import catalog, naming
from gateway.mcp.protocol import RpcFailure

TOOLS = {
    "a": [{"name": "echo", "description": "A echo", "inputSchema": {"type": "object"}, "title": "Echo",
           "annotations": {"readOnlyHint": True}, "outputSchema": {"type": "object"}, "icons": [{"src": "x"}]},
          {"name": "only_a"}],
    "b": [{"name": "echo", "description": "B echo", "inputSchema": {"type": "object"}}, {"name": "web.search"}],
    "c": [{"name": "echo", "inputSchema": {"type": "object"}}],
}
ALL = {(s, t["name"]) for s, ts in TOOLS.items() for t in ts}


def only(allowed: set[tuple[str, str]]) -> dict[str, list[dict]]:
    """TOOLS as policy left them: only the `allowed` (server, tool) pairs (enforce.visible filters first)."""
    return {s: [t for t in ts if (s, t["name"]) in allowed] for s, ts in TOOLS.items()}


def names(tools: list[dict]) -> list[str]:
    return [t["name"] for t in tools]


def test_merge_keeps_fields_and_adds_broadcast() -> None:
    merged = catalog.merge_tools(TOOLS, broadcast=True)
    assert names(merged)[:5] == ["a__echo", "a__only_a", "b__echo", names(merged)[3], "c__echo"]
    first = merged[0]
    for key in ("title", "description", "inputSchema", "outputSchema", "annotations", "icons"):
        assert first[key] == TOOLS["a"][0][key]
    assert first["_meta"][catalog.SERVER_META] == "a"
    (echo,) = [t for t in merged if t["name"] == "echo"]
    assert echo["_meta"][catalog.SERVER_META] == ["a", "b", "c"] and "outputSchema" not in echo
    assert merged[3]["name"].startswith("b__web_search_")  # '.' is not spec-valid: hashed


@pytest.mark.parametrize(
    ("allowed", "broadcast", "expected_broadcast"),
    [
        (ALL, True, ["a", "b", "c"]),
        ({("a", "echo"), ("c", "echo")}, True, ["a", "c"]),
        ({("a", "echo")}, True, None),  # offered by one permitted server only: no broadcast tool
        (ALL, False, None),
    ],
)
def test_broadcast_needs_two_permitted_servers(allowed, broadcast, expected_broadcast) -> None:
    merged = catalog.merge_tools(only(allowed), broadcast)
    entry = next((t for t in merged if t["name"] == "echo"), None)
    assert (entry["_meta"][catalog.SERVER_META] if entry else None) == expected_broadcast
    prefixed = {t["name"] for t in merged if t["name"] != "echo"}
    assert prefixed == {naming.public_name(s, t) for s, t in allowed}


@pytest.mark.parametrize(
    ("public", "broadcast", "expected"),
    [
        ("a__echo", True, catalog.Target("echo", ("a",))),
        ("echo", True, catalog.Target("echo", ("a", "b", "c"), broadcast=True)),
        ("echo", False, None),
        ("only_a", True, None),
        (catalog.merge_tools(TOOLS, True)[3]["name"], True, catalog.Target("web.search", ("b",))),
        ("zz__echo", True, None),
    ],
)
def test_resolve_tool(public: str, broadcast: bool, expected) -> None:
    assert catalog.resolve_tool(public, TOOLS, broadcast) == expected


OBJ = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
SAME_REORDERED = {"required": ["q"], "properties": {"q": {"type": "string"}}, "type": "object"}
OTHER = {"type": "object", "properties": {"q": {"type": "integer"}}}


@pytest.mark.parametrize(
    ("schemas", "offered"),
    [
        ((OBJ, OBJ), True),
        ((OBJ, SAME_REORDERED), True),  # canonical JSON: key order does not matter
        ((OBJ, OTHER), False),
        ((None, None), True),  # neither declares one: both the empty object schema
        ((None, {"type": "object", "properties": {}}), True),
        ((OBJ, None), False),
        ((OBJ, OBJ, OTHER), False),  # one server disagreeing withdraws the broadcast name
    ],
)
def test_broadcast_only_where_the_schemas_agree(schemas: tuple, offered: bool) -> None:
    per_server = {f"s{i}": [{"name": "find", **({"inputSchema": sc} if sc is not None else {})}]
                  for i, sc in enumerate(schemas)}
    listed = catalog.merge_tools(per_server, broadcast=True)
    entry = next((t for t in listed if t["name"] == "find"), None)
    assert (entry is not None) is offered
    if entry is not None:
        assert entry["inputSchema"] == catalog.input_schema(per_server["s0"][0])
    # Listing and calling agree: a name not listed does not resolve either.
    target = catalog.resolve_tool("find", per_server, broadcast=True)
    assert (target is not None) is offered
    # Each server's own tool stays callable by its prefixed name.
    assert catalog.resolve_tool("s1__find", per_server, True) == catalog.Target("find", ("s1",))


def test_broadcast_result_counts_errors_and_tool_failures() -> None:
    ok = {"content": [{"type": "text", "text": "1"}]}
    bad = {"content": [], "isError": True}
    result = catalog.broadcast_result("echo", {"a": ok, "b": bad}, {"c": "timed out"}, 3)
    assert result["content"][0]["text"].startswith("'echo' succeeded on 1/3 servers")
    assert result["structuredContent"]["a"] == {"ok": True, "result": ok}
    assert result["structuredContent"]["c"] == {"ok": False, "error": "timed out"}
    assert result["structuredContent"]["b"]["ok"] is False and result["isError"] is False
    assert catalog.broadcast_result("echo", {}, {"a": "x"}, 1)["isError"] is True


def test_paginate_round_trip_and_bad_cursor() -> None:
    items = list(range(10))
    page, cursor = catalog.paginate(items, None, 4)
    seen = list(page)
    while cursor:
        page, cursor = catalog.paginate(items, cursor, 4)
        seen += page
    assert seen == items
    for bad in ("!!!", "eDox", "bzo5OQ"):  # not base64 / wrong kind / past the end
        with pytest.raises(RpcFailure):
            catalog.paginate(items, bad, 4)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mcpgw://conf/test://static-text", ("conf", "test://static-text")),
        ("mcpgw://conf/file:///a/b", ("conf", "file:///a/b")),
        ("mcpgw://other/x", None),
        ("test://static-text", None),
        ("mcpgw://conf/", None),
    ],
)
def test_unwrap_uri(uri: str, expected) -> None:
    assert catalog.unwrap_uri(uri, ["conf"]) == expected
    if expected:
        assert catalog.wrap_uri(*expected) == uri


def test_every_listed_name_resolves_to_what_it_lists() -> None:
    per_server = {
        "fm": [{"name": "web.search"}, {"name": "x" * 80}, {"name": "plain"}],
        "gh": [{"name": "web.search"}, {"name": "looks_shortened_13f73928"}],
    }
    listed = catalog.merge_tools(per_server, broadcast=True)
    assert any(t["name"].startswith("web_search_") for t in listed)  # a shortened broadcast name
    for entry in listed:
        target = catalog.resolve_tool(entry["name"], per_server, broadcast=True)
        servers = entry["_meta"][catalog.SERVER_META]
        assert target is not None and list(target.servers) == (servers if isinstance(servers, list) else [servers])
