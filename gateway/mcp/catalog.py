"""Pure aggregation for `/mcp`: the merged tool, prompt and resource lists, name resolution, paging.

A tool offered alike by several permitted servers is also listed unprefixed: a *broadcast tool*
that runs on all of them. Resources keep their URIs inside `mcpgw://{server}/`, so reading one is
routed without a lookup.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.mcp import naming
from gateway.mcp.protocol import INVALID_PARAMS, RpcFailure
from shared.jsonutil import dumps_str

TOOL_FIELDS = ("title", "description", "inputSchema", "outputSchema", "annotations", "icons", "_meta")
SERVER_META = "io.mcpgw/server"
RESOURCE_SCHEME = "mcpgw://"
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


def tool_entry(server: str, tool: Mapping[str, Any]) -> dict[str, Any]:
    """One backend tool under its aggregated name, every descriptive field kept."""
    entry: dict[str, Any] = {"name": naming.public_name(server, tool["name"])}
    for key in TOOL_FIELDS:
        if key in tool:
            entry[key] = tool[key]
    entry.setdefault("inputSchema", dict(_EMPTY_SCHEMA))
    entry["_meta"] = {**(tool.get("_meta") or {}), SERVER_META: server}
    return entry


def broadcast_entry(name: str, offers: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The unprefixed tool that runs `name` on every server in `offers` (sorted by server)."""
    servers = [s for s, _ in offers]
    first = offers[0][1]
    entry: dict[str, Any] = {
        "name": naming.broadcast_name(name),
        "description": f"Runs '{name}' on all of: {', '.join(servers)}. "
        + str(first.get("description") or ""),
        "inputSchema": input_schema(first),
        "_meta": {SERVER_META: servers},
    }
    for key in ("title", "icons"):
        if key in first:
            entry[key] = first[key]
    return entry


def input_schema(tool: Mapping[str, Any]) -> Any:
    """A tool's `inputSchema`, the empty object schema when it declares none."""
    return tool.get("inputSchema") or dict(_EMPTY_SCHEMA)


def broadcastable(offers: Sequence[tuple[str, Mapping[str, Any]]]) -> bool:
    """Two or more servers offer the tool with one `inputSchema` (canonical JSON equality): a broadcast
    advertises one schema, and arguments valid for it may mean something else on another server."""
    if len(offers) < 2:
        return False
    first = _canonical(input_schema(offers[0][1]))
    return all(_canonical(input_schema(tool)) == first for _, tool in offers[1:])


def _canonical(value: Any) -> bytes:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # not JSON (a backend's odd value): never equal to anything else
        return repr(id(value)).encode()


def _offers(per_server: Mapping[str, Iterable[Mapping[str, Any]]],
            ) -> tuple[list[dict[str, Any]], dict[str, list[tuple[str, Mapping[str, Any]]]]]:
    tools: list[dict[str, Any]] = []
    offers: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for server in sorted(per_server):
        for tool in per_server[server]:
            name = tool.get("name")
            if isinstance(name, str):
                tools.append(tool_entry(server, tool))
                offers.setdefault(name, []).append((server, tool))
    return tools, offers


def _broadcasts(tools: list[dict[str, Any]], offers: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]],
                ) -> dict[str, str]:
    """public broadcast name -> tool name, for names offered alike by several servers and not clashing."""
    taken = {t["name"] for t in tools}
    out: dict[str, str] = {}
    for name in sorted(offers):
        public = naming.broadcast_name(name)
        if public not in taken and public not in out and broadcastable(offers[name]):
            out[public] = name
    return out


def merge_tools(per_server: Mapping[str, Sequence[Mapping[str, Any]]], broadcast: bool) -> list[dict[str, Any]]:
    """Every tool, prefixed; then the broadcast tools (same schema, names that do not clash)."""
    tools, offers = _offers(per_server)
    if broadcast:
        tools += [broadcast_entry(name, offers[name]) for name in _broadcasts(tools, offers).values()]
    return tools


@dataclass(frozen=True)
class Target:
    """What an aggregated tool name means: one (server, tool) or a broadcast over servers."""

    tool: str
    servers: tuple[str, ...]
    broadcast: bool = False


def resolve_tool(
    public: str, per_server: Mapping[str, Iterable[Mapping[str, Any]]], broadcast: bool,
) -> Target | None:
    """The target of `public` given every server's (visible) tools, exactly as `merge_tools` lists them."""
    lists = {s: [t for t in tools if isinstance(t.get("name"), str)] for s, tools in per_server.items()}
    found = naming.resolve(public, {s: [t["name"] for t in tools] for s, tools in lists.items()})
    if found is not None:
        return Target(found[1], (found[0],))
    if broadcast:
        tools, offers = _offers(lists)
        name = _broadcasts(tools, offers).get(public)
        if name is not None:
            return Target(name, tuple(s for s, _ in offers[name]), broadcast=True)
    return None


def broadcast_result(tool: str, results: Mapping[str, Any], errors: Mapping[str, str], total: int) -> dict[str, Any]:
    """One CallToolResult for a broadcast: a summary line, per-server results keyed by server."""
    ok = sorted(s for s, r in results.items() if not (isinstance(r, dict) and r.get("isError")))
    failed = {s: "tool returned an error" for s in results if s not in ok}
    failed.update(errors)
    structured: dict[str, Any] = {s: {"ok": True, "result": results[s]} for s in ok}
    structured.update({s: {"ok": False, "error": msg, **({"result": results[s]} if s in results else {})}
                       for s, msg in failed.items()})
    summary = f"'{tool}' succeeded on {len(ok)}/{total} servers"
    if failed:
        summary += " (failed: " + ", ".join(sorted(failed)) + ")"
    return {
        "content": [{"type": "text", "text": summary}, {"type": "text", "text": dumps_str(structured)}],
        "structuredContent": structured,
        "isError": not ok,
    }


def wrap_uri(server: str, uri: str) -> str:
    """The aggregated URI of a backend resource (or template)."""
    return f"{RESOURCE_SCHEME}{server}/{uri}"


def split_uri(uri: str) -> tuple[str, str] | None:
    """(server, original URI) an aggregated URI spells, whether or not the server exists."""
    if not uri.startswith(RESOURCE_SCHEME):
        return None
    server, sep, original = uri[len(RESOURCE_SCHEME):].partition("/")
    return (server, original) if sep and server and original else None


def unwrap_uri(uri: str, servers: Collection[str]) -> tuple[str, str] | None:
    """(server, original URI) of an aggregated URI; None if it names no known server."""
    found = split_uri(uri)
    return found if found is not None and found[0] in servers else None


def merge_named(per_server: Mapping[str, Sequence[Mapping[str, Any]]], key: str,
                rename: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """Every server's prompts/resources/templates, `key` rewritten by `rename`."""
    out = []
    for server in sorted(per_server):
        for item in per_server[server]:
            value = item.get(key)
            if isinstance(value, str):
                out.append({**item, key: rename(server, value),
                            "_meta": {**(item.get("_meta") or {}), SERVER_META: server}})
    return out


def paginate(items: Sequence[Any], cursor: Any, size: int) -> tuple[list[Any], str | None]:
    """One page and the opaque cursor of the next (None at the end); −32602 for a bad cursor."""
    start = 0
    if cursor is not None:
        try:
            text = base64.urlsafe_b64decode(str(cursor) + "=" * (-len(str(cursor)) % 4)).decode()
            kind, _, offset = text.partition(":")
            start = int(offset)
            if kind != "o" or not 0 <= start <= len(items):
                raise ValueError
        except ValueError:
            raise RpcFailure(INVALID_PARAMS, "invalid pagination cursor") from None
    end = start + size
    nxt = base64.urlsafe_b64encode(f"o:{end}".encode()).decode().rstrip("=") if end < len(items) else None
    return list(items[start:end]), nxt
