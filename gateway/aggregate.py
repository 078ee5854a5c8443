"""Aggregation for `GET /tools` and `POST /tools/{name}/invoke`: pure functions over per-server data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from gateway.mcp.catalog import input_schema
from shared.jsonutil import dumps_str

SERVERS_META_KEY = "mcpgw/servers"


def aggregate_tools(
    per_server: Mapping[str, Sequence[Mapping[str, Any]]],
    allowed: Iterable[tuple[str, str]] | None = None,
) -> list[dict[str, Any]]:
    """One MCP tool per name across servers (first server, by name, wins the schema).

    `allowed` (server, tool) pairs filter the input; None keeps everything. Each tool lists the
    servers offering it under `_meta["mcpgw/servers"]`, since invoking it runs on all of them.
    """
    keep = None if allowed is None else set(allowed)
    merged: dict[str, dict[str, Any]] = {}
    for server in sorted(per_server):
        for tool in per_server[server]:
            name = tool.get("name")
            if not isinstance(name, str) or (keep is not None and (server, name) not in keep):
                continue
            entry = merged.get(name)
            if entry is None:
                entry = {
                    "name": name,
                    "description": tool.get("description") or "",
                    "inputSchema": input_schema(tool),
                }
                for optional in ("title", "annotations", "outputSchema"):
                    if optional in tool:
                        entry[optional] = tool[optional]
                entry["_meta"] = {SERVERS_META_KEY: []}
                merged[name] = entry
            entry["_meta"][SERVERS_META_KEY].append(server)
    return [merged[name] for name in sorted(merged)]


def invocation_content(tool_name: str, arguments: Mapping[str, Any], outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The `/tools/{name}/invoke` body for a broadcast's `outcome` (`broadcast_response`): an MCP
    `CallToolResult` (a summary line, the per-server details as JSON) plus the results and errors.
    Only an error when nothing succeeded: partial answers are still answers."""
    successful, failed = outcome["successful"], outcome["failed"]
    summary = f"'{tool_name}' succeeded on {successful}/{outcome['total_servers']} servers"
    details = {"tool": tool_name, "parameters": dict(arguments),
               **{key: outcome[key] for key in ("results", "errors", "execution_time_ms")}}
    return {
        "content": [
            {"type": "text", "text": summary + (f" ({failed} failed)" if failed else "")},
            {"type": "resource", "resource": {"uri": f"gateway://results/{tool_name}", "mimeType": "application/json",
                                              "text": dumps_str(details)}},
        ],
        "isError": successful == 0,
        "results": outcome["results"],
        "errors": outcome["errors"],
    }
