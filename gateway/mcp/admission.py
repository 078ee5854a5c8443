"""Which items of a backend's catalog the gateway can represent (`why_not`, pure); the rest are
left out of that backend's list, logged once and counted.

A name like `evil:tool` cannot become a policy resource (`:` separates segments) and would fail the
PDP search for everyone's list. Tools follow the MCP 2025-11-25 name guidance; prompts are printable
ASCII without `:` or `*`; resources and templates must be URIs in normal form (uris.py). A listing
longer than the gateway keeps (the item cap, the call budget, all pages together) is left out
whole, counted and logged the same way (`oversized`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from gateway.mcp import uris
from gateway.upstream.codec import LIST_KEYS

log = logging.getLogger(__name__)

MAX_NAME = 128  # characters of a tool or prompt name
TOOL_NAME = re.compile(rf"^[A-Za-z0-9_.\-]{{1,{MAX_NAME}}}$")
# Printable ASCII without `:` (segment separator) and `*` (the policy glob), no edge spaces.
_EDGE, _INNER = r"[\x21-\x29\x2b-\x39\x3b-\x7e]", r"[\x20-\x29\x2b-\x39\x3b-\x7e]"
PROMPT_NAME = re.compile(rf"{_EDGE}(?:{_INNER}{{0,{MAX_NAME - 2}}}{_EDGE})?")
# list method -> (item key, what the item is); the result key is codec.LIST_KEYS[method]
LISTS = {
    "tools/list": ("name", "tool"),
    "prompts/list": ("name", "prompt"),
    "resources/list": ("uri", "resource"),
    "resources/templates/list": ("uriTemplate", "template"),
}
# what an item is -> the AuthZEN action a list is filtered on (one may list what one may use)
ACTION = {"tool": "invoke_tool", "prompt": "get_prompt", "resource": "read_resource", "template": "read_resource"}
_SEEN_MAX = 4096


def why_not(kind: str, value: Any) -> str | None:
    """Why an item named `value` cannot be represented, or None when it can."""
    if not isinstance(value, str):
        return "name is not a string"
    if kind == "tool":
        return None if TOOL_NAME.fullmatch(value) else f"tool name is not 1-{MAX_NAME} of A-Z a-z 0-9 _ - ."
    if kind == "prompt":
        return None if PROMPT_NAME.fullmatch(value) else f"prompt name is not 1-{MAX_NAME} printable ASCII characters without ':' or '*'"
    if kind in ("resource", "template"):
        return uris.refusal(value, template=kind == "template")
    return f"unknown item kind {kind!r}"


def split(method: str, items: list[Any]) -> tuple[list[Any], list[tuple[str, str]]]:
    """(items kept, [(item's printable name, reason)] left out) of one list page."""
    key, kind = LISTS[method]
    kept: list[Any] = []
    dropped: list[tuple[str, str]] = []
    for item in items:
        value = item.get(key) if isinstance(item, dict) else None
        reason = why_not(kind, value) if isinstance(item, dict) else "item is not an object"
        if reason is None:
            kept.append(item)
        else:
            dropped.append((ascii(value)[:200], reason))
    return kept, dropped


class CatalogGuard:
    """Applies `split` to list results; logs each dropped item once and counts every drop."""

    def __init__(self, counter: Counter | None = None) -> None:
        self.counter = counter  # labelled (server, kind)
        self._seen: set[tuple[str, str, str]] = set()

    def result(self, server: str, method: str, result: Mapping[str, Any]) -> dict[str, Any]:
        """`result` (a list method's result) with the items that cannot be represented left out."""
        key, kind = LIST_KEYS[method], LISTS[method][1]
        items = result.get(key)
        if not isinstance(items, list):
            return dict(result)
        kept, dropped = split(method, items)
        if not dropped:
            return dict(result)
        for name, reason in dropped:
            self._note(server, kind, name, reason)
        return {**result, key: kept}

    def oversized(self, server: str, method: str, items: int, reason: str) -> None:
        """A listing left out whole for its size: its items read so far counted, logged once."""
        self._note(server, LISTS[method][1], "(the whole list)", reason, max(items, 1))

    def _note(self, server: str, kind: str, name: str, reason: str, count: int = 1) -> None:
        if self.counter is not None:
            self.counter.labels(server, kind).inc(count)
        seen = (server, kind, name)
        if seen in self._seen:
            return
        if len(self._seen) >= _SEEN_MAX:
            self._seen.clear()  # bounded: a backend inventing names forever logs again, never grows memory
        self._seen.add(seen)
        log.warning("backend %s item left out of its catalog: %s", kind, reason,
                    extra={"server": server, "item": name, "kind": kind})

