"""Broadcast: pick target servers for one tool, call them concurrently, return partial results.

Target selection and result shaping are pure; `run_calls` is the only part that awaits. The caller
authorizes every target in one batch before any backend is contacted, tool-list probes included.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gateway.registry import ServerConfig


@dataclass
class Plan:
    """Who a broadcast will call, and who it will not (with why)."""

    targets: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # Servers whose tool list is unknown (no `tools` hint): asked only once policy allows the call.
    to_probe: list[str] = field(default_factory=list)


def offers_tool(server: ServerConfig, tool_name: str) -> bool | None:
    """True/False from the server's `tools` hint; None when it has no hint."""
    hint = server.tools
    if not hint:
        return None
    return tool_name in hint or "*" in hint


def plan_targets(
    servers: Mapping[str, ServerConfig],
    tool_name: str,
    mcp_servers: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
) -> Plan:
    """Named servers, else enabled servers with any of the tags, else enabled servers offering the tool."""
    plan = Plan()
    if mcp_servers:
        for name in dict.fromkeys(mcp_servers):
            server = servers.get(name)
            if server is None:
                plan.errors[name] = f"unknown MCP server '{name}'"
            elif not server.enabled:
                plan.errors[name] = f"MCP server '{name}' is disabled"
            else:
                plan.targets.append(name)
        return plan
    enabled = [s for s in servers.values() if s.enabled]
    if tags:
        wanted = set(tags)
        plan.targets = [s.name for s in enabled if wanted.intersection(s.tags)]
        return plan
    for server in enabled:
        offered = offers_tool(server, tool_name)
        if offered is None:
            plan.to_probe.append(server.name)
        elif offered:
            plan.targets.append(server.name)
    return plan


def resolve_probes(
    probed: Sequence[str], listed: Mapping[str, Iterable[str] | BaseException], tool_name: str
) -> tuple[list[str], dict[str, str]]:
    """(probed servers offering the tool, {server: why its list is unknown}), in `probed` order."""
    found: list[str] = []
    failed: dict[str, str] = {}
    for name in probed:
        tools = listed.get(name)
        if tools is None:
            failed[name] = "could not list tools: no answer"
        elif isinstance(tools, BaseException):
            failed[name] = f"could not list tools: {str(tools) or type(tools).__name__}"
        elif tool_name in tools:
            found.append(name)
    return found, failed


class ExpectedLatency:
    """Each server's recent call latency (a moving average), so a broadcast starts the slowest first:
    it lasts as long as its slowest answer, which would otherwise wait for the gateway's work on every
    target started before it (~0.2 ms each). One entry per configured server."""

    WEIGHT = 0.3  # of the newest observation: a backend that slows down moves up within a few calls

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def observe(self, server: str, seconds: float) -> None:
        """Fold one call's latency into `server`'s average."""
        old = self.seconds.get(server)
        self.seconds[server] = seconds if old is None else old + self.WEIGHT * (seconds - old)

    def slowest_first(self, servers: Sequence[str]) -> list[str]:
        """`servers`, the slowest expected first; servers never called yet (unknown, maybe slow)
        before all; ties keep their order."""
        return sorted(servers, key=lambda name: -self.seconds.get(name, math.inf))


Call = Callable[[str], Awaitable[Any]]


async def run_calls(
    servers: Sequence[str],
    call: Call,
    *,
    timeouts: Mapping[str, float],
    deadline: float,
    describe_error: Callable[[BaseException], str] = str,
    start: Sequence[str] | None = None,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Call every server concurrently; each has its own timeout and all share one deadline.

    Calls start in `start` order (the same servers, e.g. `ExpectedLatency.slowest_first`); the
    answers come back in `servers` order whatever it was."""
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    if not servers:
        return results, errors

    async def one(name: str) -> Any:
        async with asyncio.timeout(min(timeouts.get(name, deadline), deadline)):
            return await call(name)

    started = {name: asyncio.create_task(one(name)) for name in (servers if start is None else start)}
    tasks = {started[name]: name for name in servers}
    done, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:
        task.cancel()
    if pending:
        # Let cancelled calls unwind (close their streams) before answering.
        await asyncio.wait(pending, timeout=1.0)
    for task, name in tasks.items():
        if task in pending:
            errors[name] = f"no answer within the broadcast deadline ({deadline:g}s)"
            continue
        exc = task.exception()
        if exc is None:
            results[name] = task.result()
        elif isinstance(exc, TimeoutError):
            errors[name] = f"timed out after {min(timeouts.get(name, deadline), deadline):g}s"
        else:
            errors[name] = describe_error(exc)
    return results, errors


def broadcast_response(
    tool_name: str,
    total: Sequence[str],
    results: Mapping[str, Any],
    errors: Mapping[str, str],
    started: float,
) -> dict[str, Any]:
    """The `/mcp/invoke-broadcast` body (same shape as the gateway this replaces).

    A result with `isError: true` is the backend saying the tool failed: it stays in `results`
    (its content explains why) but counts as failed, not successful.
    """
    order = {name: i for i, name in enumerate(total)}
    tool_errors = sum(1 for r in results.values() if isinstance(r, Mapping) and r.get("isError") is True)
    return {
        "tool_name": tool_name,
        "total_servers": len(total),
        "successful": len(results) - tool_errors,
        "failed": len(errors) + tool_errors,
        "execution_time_ms": round((time.perf_counter() - started) * 1000, 3),
        "results": dict(sorted(results.items(), key=lambda kv: order.get(kv[0], len(order)))),
        "errors": dict(sorted(errors.items(), key=lambda kv: order.get(kv[0], len(order)))),
    }
