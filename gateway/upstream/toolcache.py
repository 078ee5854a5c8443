"""Which tools each backend offers, as last seen by `tools/list` (names and input schemas): a call
names a tool of this catalog exactly or is not forwarded (gateway/calls/admit.py), and its
arguments are checked against that tool's schema, without a `tools/list` round trip per call.

Entries are fresh for `ttl` seconds and belong to one registry generation: a reload of the servers
file makes every entry stale. A stale or missing entry is fetched again before the call is decided
(`UpstreamPool.catalog`, one fetch in flight per backend). Forgetting a backend (it announced a
list change, or denied a listed tool) bumps its epoch: a listing begun before that is not stored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# How backends say "no such tool": the SDK answers a result with isError and this text; others
# answer JSON-RPC -32602 (invalid params) naming the tool.
_UNKNOWN_PREFIX = "unknown tool"
INVALID_PARAMS = -32602


class ToolNames:
    """Tool definitions per backend with a TTL and the registry generation they were listed under."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, tuple[int, float, dict[str, Mapping[str, Any]]]] = {}
        self._epochs: dict[str, int] = {}  # per backend, bumped by `forget`

    def tools(self, server: str, generation: int) -> Mapping[str, Mapping[str, Any]] | None:
        """{name: tool definition} if listed recently under `generation`, else None."""
        entry = self._entries.get(server)
        if entry is None or entry[0] != generation or self._clock() >= entry[1]:
            return None
        return entry[2]

    def epoch(self, server: str) -> int:
        """How often `server` (or the backend of a `server\\x00caps` key) was forgotten: read before
        listing, handed to `store`."""
        return self._epochs.get(server.partition("\x00")[0], 0)

    def store(self, server: str, generation: int, tools: Iterable[Mapping[str, Any]], epoch: int | None = None) -> None:
        """Remember a complete tools/list answer (unless `server` was forgotten since `epoch`)."""
        if self.ttl <= 0 or (epoch is not None and epoch != self.epoch(server)):
            return
        by_name = {t["name"]: t for t in tools if isinstance(t.get("name"), str)}
        self._entries[server] = (generation, self._clock() + self.ttl, by_name)

    def forget(self, server: str) -> None:
        """Drop what is known about `server` (it just contradicted an entry): its shared catalog and
        those kept per set of declared capabilities (keyed `server\\x00caps`, pool.catalog), and what
        listings in flight would store."""
        self._epochs[server] = self._epochs.get(server, 0) + 1
        for key in [k for k in self._entries if k == server or k.startswith(server + "\x00")]:
            del self._entries[key]


def says_unknown_tool(result: object, tool: str) -> bool:
    """True when a CallToolResult is the backend's "Unknown tool: <tool>" error."""
    if not isinstance(result, dict) or result.get("isError") is not True:
        return False
    content = result.get("content")
    if not isinstance(content, list) or len(content) != 1 or not isinstance(content[0], dict):
        return False
    text = content[0].get("text")
    return isinstance(text, str) and text.strip().lower() == f"{_UNKNOWN_PREFIX}: {tool}".lower()


def rpc_unknown_tool(code: object, message: str, tool: str) -> bool:
    """True when a JSON-RPC error answer says the tool does not exist."""
    text = message.lower()
    return code == INVALID_PARAMS and _UNKNOWN_PREFIX in text and tool.lower() in text
