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


def summary_text(tool_name: str, successful: int, total: int, failed: int) -> str:
    """One line for humans and LLMs: how many servers succeeded."""
    text = f"'{tool_name}' succeeded on {successful}/{total} servers"
    return text + (f" ({failed} failed)" if failed else "")


def invocation_content(
    tool_name: str, arguments: Mapping[str, Any], broadcast: Mapping[str, Any]
) -> dict[str, Any]:
    """An MCP `CallToolResult`-shaped body: a summary text and the per-server details as JSON."""
    successful = int(broadcast.get("successful", 0))
    failed = int(broadcast.get("failed", 0))
    total = int(broadcast.get("total_servers", 0))
    details = {
        "tool": tool_name,
        "parameters": dict(arguments),
        "results": broadcast.get("results", {}),
        "errors": broadcast.get("errors", {}),
        "execution_time_ms": broadcast.get("execution_time_ms", 0),
    }
    return {
        "content": [
            {"type": "text", "text": summary_text(tool_name, successful, total, failed)},
            {
                "type": "resource",
                "resource": {
                    "uri": f"gateway://results/{tool_name}",
                    "mimeType": "application/json",
                    "text": dumps_str(details),
                },
            },
        ],
        # Only an error when nothing succeeded: partial answers are still answers.
        "isError": successful == 0,
    }
