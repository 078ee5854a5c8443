"""What the pipeline learns from a backend's answer to a tool call, the same for every entry point.

    unknown_tool  "Unknown tool: x", or JSON-RPC −32602 naming it: the backend's cached catalogs are forgotten
    tool_error    `isError: true`: audited as failed (in a broadcast, per target: `extra.tool_failed`)
    ok            anything else

`settle` sees every answer: the pipeline's (pipeline.forwarded), and relays' through `observer`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from aiohttp import web

from gateway.calls.audit import audit
from gateway.calls.call import Call
from gateway.keys import UPSTREAM
from gateway.upstream.toolcache import rpc_unknown_tool, says_unknown_tool

Kind = Literal["ok", "tool_error", "unknown_tool"]
TOOL_ERROR = "tool returned isError"


def judge(tool: str, result: object = None, error: object = None) -> Kind:
    """The kind of a backend's answer to `tools/call` of `tool`: its result, or its JSON-RPC error object."""
    if isinstance(error, Mapping):
        message = error.get("message")
        if rpc_unknown_tool(error.get("code"), message if isinstance(message, str) else "", tool):
            return "unknown_tool"
        return "ok"  # a JSON-RPC error is not a tool result: its status says how it failed
    if says_unknown_tool(result, tool):
        return "unknown_tool"
    if isinstance(result, Mapping) and result.get("isError") is True:
        return "tool_error"
    return "ok"


def settle(request: web.Request, call: Call, server: str, result: object = None, error: object = None) -> Kind:
    """Judge a call's answer from `server` and act on it; other actions than tool calls are "ok"."""
    if call.action != "invoke_tool":
        return "ok"
    return settle_tool(request, call.name, server, call.broadcast, result, error)


def settle_tool(request: web.Request, tool: str, server: str, broadcast: bool, result: object = None,
                error: object = None) -> Kind:
    """Judge the answer to `tools/call` of `tool` on `server` and act on it (idempotent: a forward
    may report it and the pipeline see it again)."""
    kind = judge(tool, result, error)
    if kind == "ok":
        return kind
    if kind == "unknown_tool":
        request.app[UPSTREAM].tool_names.forget(server)
    info = audit(request)
    if broadcast:
        failed = info.extra.get("tool_failed") if info.extra else None
        names = set(failed) if isinstance(failed, list) else set()
        info.note(tool_failed=sorted(names | {server}))
    else:
        info.tool_failed = True
        info.error = info.error or TOOL_ERROR
    return kind


def observer(request: web.Request, call: Call | None, server: str) -> Callable[[Mapping[str, Any]], None] | None:
    """For a forward relaying the answer itself: a function to hand the JSON-RPC response message
    to (None when the message is not a tool call)."""
    if call is None or call.action != "invoke_tool":
        return None

    def seen(message: Mapping[str, Any]) -> None:
        settle(request, call, server, message.get("result"), message.get("error"))

    return seen
