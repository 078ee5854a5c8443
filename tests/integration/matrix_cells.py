"""The client matrix's table: which cell runs, which is skipped or a known gateway limit, and why;
what each server is asked for each feature; what its backend must have received."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import pytest

CLIENTS = ("python", "python2026", "ts", "inspector")
ENDPOINTS = ("mcp", "passthrough")
SERVERS = ("everything", "everysse", "fast", "memory", "files")
FEATURES = ("tools", "resources", "prompts", "sampling", "elicitation", "progress", "cancellation",
            "list_changed", "restart")
SESSION = {"sampling", "elicitation", "progress", "cancellation", "list_changed", "restart"}

DATA = "data:text/plain;base64,bWF0cml4"  # gzip-file-as-resource's input, inline (no network)
EVERYTHING: dict[str, dict[str, Any]] = {
    "tools": {"name": "echo", "arguments": {"message": "{tag}"}, "says": "Echo: {tag}"},
    "resources": {"uri": "demo://resource/static/document/architecture.md", "says": "Architecture"},
    "prompts": {"name": "simple-prompt", "arguments": {}, "says": "This is a simple prompt without arguments."},
    "sampling": {"name": "trigger-sampling-request", "arguments": {"prompt": "{tag}", "maxTokens": 20},
                 "says": "re: "},
    "elicitation": {"name": "trigger-elicitation-request", "arguments": {}, "says": "- Name: {tag}"},
    "progress": {"name": "trigger-long-running-operation", "arguments": {"duration": 0.3, "steps": 3}},
    # first progress note after 1 s; it would run 20 s if the cancellation did not reach it
    "cancellation": {"name": "trigger-long-running-operation", "arguments": {"duration": 20, "steps": 20}},
    # a session resource: announced on the session's own GET stream while the call runs
    "list_changed": {"method": "notifications/resources/list_changed",
                     "call": {"name": "gzip-file-as-resource", "arguments": {"name": "{tag}.gz", "data": DATA}}},
}
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "everything": EVERYTHING,
    "everysse": EVERYTHING,
    "fast": {
        "tools": {"name": "echo", "arguments": {"message": "{tag}"}, "says": "Echo: {tag}"},
        "resources": {"uri": "matrix://note", "says": "a note from FastMCP"},
        "prompts": {"name": "greet", "arguments": {"name": "{tag}"}, "says": "Hello, {tag}!"},
        "sampling": {"name": "sample", "arguments": {"topic": "{tag}"}, "says": "llm said: re: {tag}"},
        "elicitation": {"name": "elicit", "arguments": {"question": "name?"}, "says": "user said: accept {tag}"},
        "progress": {"name": "progress", "arguments": {"steps": 3}},
        "cancellation": {"name": "wait_cancel", "arguments": {"seconds": 20}},
        # the test grows FastMCP's catalog directly at the backend, while no call runs
        "list_changed": {"method": "notifications/tools/list_changed", "grow": "grown_{tag}"},
    },
    "memory": {
        "tools": {"name": "search_nodes", "arguments": {"query": "{tag}"}, "says": "entities"},
        "resources": {"uri": "memory://knowledge-graph", "says": "entities"},
    },
    "files": {
        "tools": {"name": "read_text_file", "arguments": {"path": "{files}/{tag}.txt"}, "says": "hello {tag}"},
    },
}
RESTART = {"everything": "echo", "everysse": "echo", "fast": "echo", "memory": "search_nodes", "files": "read_text_file"}

LIMITS: dict[tuple[str, str, str], str] = {}  # (endpoint or *, server, feature) -> why the gateway cannot yet
NOT_APPLICABLE: dict[tuple[str, str, str], str] = {  # (endpoint or *, server, feature) -> why no cell
    ("passthrough", "fast", "list_changed"): (
        "FastMCP 4 sends no */list_changed when its catalog grows, and passthrough relays the backend as it "
        "is; /mcp announces the change from its own poll (the mcp-fast cell)"),
    ("mcp", "everything", "list_changed"): (
        "server-everything's only list change is a resource added to one backend session "
        "(gzip-file-as-resource); /mcp serves the shared catalog, which does not change"),
    ("mcp", "everysse", "list_changed"): (
        "server-everything's only list change is a resource added to one backend session "
        "(gzip-file-as-resource); /mcp serves the shared catalog, which does not change"),
}
# The Python SDK client in 2026-07-28 (`python2026`): what that era changes.
HANDSHAKE_ONLY = ("everything", "everysse", "memory", "files")  # servers speaking only the 2025 handshake
BRIDGED = ("by design a 2026-07-28 agent reaches a handshake-only server on passthrough through the "
           "gateway's bridge, which carries requests only: no progress, server requests or "
           "notifications cross it (docs/mcp.md, Era bridging)")
FASTMCP_MODERN = ("FastMCP's imperative ctx.elicit() / create_message() are unavailable on 2026-07-28 "
                  "connections by design (that era asks with an input_required result)")
ASKS = ("sampling", "elicitation")
INSPECTOR = ("the Inspector CLI runs one request per command: no session to keep across a restart, "
             "no handler for server requests, progress, cancellation or notifications")


def tags() -> list[str]:
    """Every tag a session uses (one per client, endpoint and server; restarts add `-restart`)."""
    return [f"{c}-{e}-{s}" for c, e, s in itertools.product(CLIENTS, ENDPOINTS, SERVERS)]


def all_tags() -> list[str]:
    """Every tag, restarts included (files names a file per tag)."""
    return [t for tag in tags() for t in (tag, f"{tag}-restart")]


@dataclass(frozen=True)
class Cell:
    """One cell of the matrix."""

    client: str
    endpoint: str
    server: str
    feature: str

    @property
    def id(self) -> str:
        """The test id."""
        return f"{self.client}-{self.endpoint}-{self.server}-{self.feature}"

    @property
    def tag(self) -> str:
        """The session's tag (unique text the backend must see)."""
        return f"{self.client}-{self.endpoint}-{self.server}" + ("-restart" if self.feature == "restart" else "")

    def reason(self) -> tuple[str, str] | None:
        """("skip" | "xfail", why) when the cell does not run as a plain pass."""
        if self.client == "inspector" and self.feature in SESSION:
            return "skip", INSPECTOR
        if self.client == "python2026":
            if self.endpoint == "passthrough" and self.server in HANDSHAKE_ONLY \
                    and self.feature in (*ASKS, "progress", "cancellation", "list_changed"):
                return "skip", BRIDGED
            if self.server == "fast" and self.feature in ASKS:
                return "skip", FASTMCP_MODERN
        if self.feature != "restart" and self.feature not in PROFILES[self.server]:
            return "skip", f"{self.server} offers no {self.feature.replace('_', ' ')} (nothing to relay)"
        for table, kind in ((NOT_APPLICABLE, "skip"), (LIMITS, "xfail")):
            why = table.get((self.endpoint, self.server, self.feature)) or table.get(("*", self.server, self.feature))
            if why:
                return kind, why
        return None


def _param(cell: Cell) -> Any:
    reason = cell.reason()
    marks: list[Any] = []
    if reason and reason[0] == "skip":
        marks.append(pytest.mark.skip(reason=reason[1]))
    elif reason:
        marks.append(pytest.mark.xfail(reason=reason[1], strict=True))
    return pytest.param(cell, id=cell.id, marks=marks)


# Grouped by server, then endpoint, then client: a row's cells share one session; restarts come last.
CELLS = [Cell(c, e, s, f) for s, e, c, f in itertools.product(SERVERS, ENDPOINTS, CLIENTS, FEATURES)]
PARAMS = [_param(cell) for cell in CELLS]


def fill(value: Any, tag: str, files: str) -> Any:
    """`value` with {tag} and {files} filled in, throughout."""
    if isinstance(value, str):
        return value.replace("{tag}", tag).replace("{files}", files)
    if isinstance(value, dict):
        return {k: fill(v, tag, files) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, tag, files) for v in value]
    return value
