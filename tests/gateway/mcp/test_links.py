"""Table tests for gateway.mcp.links: backend resource URIs in answers become `mcpgw://` URIs."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.mcp import catalog, links

LINK = {"type": "resource_link", "uri": "demo://resource/static/document/a.md", "name": "a"}
EMBEDDED = {"type": "resource", "resource": {"uri": "file:///x.txt", "text": "x", "mimeType": "text/plain"}}
TEXT = {"type": "text", "text": "demo://not-a-link"}


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (LINK, {**LINK, "uri": "mcpgw://s/demo://resource/static/document/a.md"}),
        (EMBEDDED, {"type": "resource", "resource": {**EMBEDDED["resource"], "uri": "mcpgw://s/file:///x.txt"}}),
        (TEXT, TEXT),  # text that looks like a URI is the tool's data
        ({"type": "resource_link", "uri": 3}, {"type": "resource_link", "uri": 3}),  # malformed: left alone
        ({"type": "resource", "resource": "x"}, {"type": "resource", "resource": "x"}),
        ("odd", "odd"),
    ],
)
def test_content_items(item: Any, expected: Any) -> None:
    assert links.content_item("s", item) == expected


def test_tool_result_rewrites_content_and_only_links_in_structured_content() -> None:
    result = {
        "content": [TEXT, LINK, EMBEDDED],
        "structuredContent": {"link": LINK, "items": [LINK, {"uri": "demo://data"}], "uri": "demo://data"},
        "isError": False,
    }
    out = links.tool_result("s", result)
    wrapped = catalog.wrap_uri("s", LINK["uri"])
    assert [c.get("uri") for c in out["content"]] == [None, wrapped, None]
    assert out["content"][2]["resource"]["uri"] == "mcpgw://s/file:///x.txt"
    assert out["structuredContent"]["link"]["uri"] == wrapped
    assert out["structuredContent"]["items"] == [{**LINK, "uri": wrapped}, {"uri": "demo://data"}]
    assert out["structuredContent"]["uri"] == "demo://data"  # not a resource link: the tool's own data
    assert result["content"][1]["uri"] == LINK["uri"]  # the input is not mutated
    # Every wrapped URI routes back to the server and the backend's own URI.
    assert catalog.unwrap_uri(wrapped, ["s"]) == ("s", LINK["uri"])


def test_prompt_messages_and_read_contents() -> None:
    prompt = {"messages": [{"role": "user", "content": EMBEDDED}, {"role": "user", "content": TEXT}]}
    out = links.prompt_result("p", prompt)
    assert out["messages"][0]["content"]["resource"]["uri"] == "mcpgw://p/file:///x.txt"
    assert out["messages"][1]["content"] == TEXT
    read = links.read_result("p", {"contents": [{"uri": "file:///x.txt", "text": "x"}, {"text": "no uri"}]})
    assert read["contents"] == [{"uri": "mcpgw://p/file:///x.txt", "text": "x"}, {"text": "no uri"}]
