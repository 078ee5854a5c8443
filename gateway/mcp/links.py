"""Resource links in `/mcp` answers, rewritten into the gateway's namespace. Pure.

A backend's results may point at its own resources (`resource_link` items, embedded `resource`
items); the agent can only read them through `/mcp` as `mcpgw://{server}/{uri}`, so every such URI
is wrapped on the way out. In `structuredContent` only objects that are themselves resource links
are rewritten: other strings there are the tool's data and are never guessed at. The passthrough
relays the backend's own URIs, which its own `resources/read` accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.mcp.catalog import wrap_uri

_MAX_DEPTH = 32  # structuredContent is walked for links; a deeper object is left as it is


def content_item(server: str, item: Any) -> Any:
    """One content item with its resource link or embedded resource URI wrapped."""
    if not isinstance(item, dict):
        return item
    kind = item.get("type")
    if kind == "resource_link" and isinstance(item.get("uri"), str):
        return {**item, "uri": wrap_uri(server, item["uri"])}
    if kind == "resource" and isinstance(item.get("resource"), dict) and isinstance(item["resource"].get("uri"), str):
        return {**item, "resource": {**item["resource"], "uri": wrap_uri(server, item["resource"]["uri"])}}
    return item


def _content(server: str, items: Any) -> Any:
    return [content_item(server, i) for i in items] if isinstance(items, list) else items


def _structured(server: str, value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return value
    if isinstance(value, dict):
        if value.get("type") == "resource_link" and isinstance(value.get("uri"), str):
            return content_item(server, value)
        return {k: _structured(server, v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_structured(server, v, depth + 1) for v in value]
    return value


def tool_result(server: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A CallToolResult with its links in the gateway's namespace."""
    out = dict(result)
    if "content" in out:
        out["content"] = _content(server, out["content"])
    if "structuredContent" in out:
        out["structuredContent"] = _structured(server, out["structuredContent"])
    return out


def _each(result: Mapping[str, Any], key: str, fix: Any) -> dict[str, Any]:
    out = dict(result)
    if isinstance(out.get(key), list):
        out[key] = [fix(x) if isinstance(x, dict) else x for x in out[key]]
    return out


def prompt_result(server: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A GetPromptResult whose messages' links are in the gateway's namespace."""
    return _each(result, "messages", lambda m: m if "content" not in m else {**m, "content": (
        _content(server, m["content"]) if isinstance(m["content"], list) else content_item(server, m["content"]))})


def read_result(server: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """A ReadResourceResult whose contents carry aggregated URIs."""
    return _each(result, "contents",
                 lambda c: {**c, "uri": wrap_uri(server, c["uri"])} if isinstance(c.get("uri"), str) else c)
