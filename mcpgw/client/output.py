"""Human output (aligned tables) and machine output (JSON on stdout).

Every text shown to a human passes `printable` (shared/textsafe.py): a tool name, description or
result holding newlines, ESC sequences or bidi overrides is shown escaped, never interpreted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from shared.textsafe import printable

__all__ = ["cell_text", "content_text", "one_line", "print_json", "printable", "table"]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    cells = [[printable(h) for h in headers]] + [[cell_text(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [c.ljust(widths[i]) for i, c in enumerate(row[:-1])] + [row[-1]]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    """How one value reads in a table cell (escaped: one cell is always one line)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return printable(",".join(str(v) for v in value)) or "-"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))  # ensure_ascii: controls arrive escaped
    return printable(value)


def print_json(value: Any, out: TextIO | None = None) -> None:
    """Pretty JSON for scripts (`jq` friendly), one document per command."""
    (out or sys.stdout).write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def content_text(result: Any) -> str:
    """The readable part of an MCP CallToolResult, escaped for a terminal (newlines and tabs kept)."""
    return printable(_content_text(result), keep_newlines=True)


def _content_text(result: Any) -> str:
    if not isinstance(result, dict):
        return json.dumps(result, indent=2, ensure_ascii=False)
    texts = []
    for item in result.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "text":
            texts.append(str(item.get("text", "")))
        elif isinstance(item, dict):
            texts.append(f"[{item.get('type', 'content')}]")
    if texts:
        return "\n".join(texts)
    if result.get("structuredContent") is not None:
        return json.dumps(result["structuredContent"], indent=2, ensure_ascii=False)
    return json.dumps(result, indent=2, ensure_ascii=False)


def content_full(result: Any) -> str:
    """Every content item of a CallToolResult, non-text ones described, plus structured content;
    escaped for a terminal (newlines and tabs kept)."""
    return printable(_content_full(result), keep_newlines=True)


def _content_full(result: Any) -> str:
    if not isinstance(result, dict):
        return json.dumps(result, indent=2, default=str)
    parts = []
    for item in result.get("content") or []:
        if not isinstance(item, dict):
            parts.append(json.dumps(item, default=str))
            continue
        kind = item.get("type", "content")
        if kind == "text":
            parts.append(str(item.get("text", "")))
        elif kind in ("image", "audio"):
            parts.append(f"[{kind} {item.get('mimeType', '?')}, {len(str(item.get('data', '')))} base64 characters]")
        elif kind == "resource":
            res = item.get("resource") or {}
            body = res.get("text") if "text" in res else f"{len(str(res.get('blob', '')))} base64 characters"
            parts.append(f"[resource {res.get('uri', '?')} {res.get('mimeType', '')}]".replace(" ]", "]") + f"\n{body}")
        elif kind == "resource_link":
            parts.append(f"[link {item.get('uri', '?')}" + (f" {item['name']}" if item.get("name") else "") + "]")
        else:
            parts.append(json.dumps(item, indent=2, default=str))
    if result.get("structuredContent") is not None:
        parts.append("structured content:\n" + json.dumps(result["structuredContent"], indent=2, default=str))
    return "\n".join(parts) if parts else json.dumps(result, indent=2, default=str)


def one_line(text: str, limit: int = 80) -> str:
    """A single table-friendly, escaped line of at most `limit` characters."""
    flat = printable(" ".join(text.split()))
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
