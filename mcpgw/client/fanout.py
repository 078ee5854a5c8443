"""`mcpgw invoke-broadcast`: one call to /mcp/invoke-broadcast, or (in a terminal) a client-side
fan-out over /mcp/invoke so each server's outcome shows as it arrives.

The fan-out mirrors the gateway's rules (gateway/broadcast.py): named servers, else enabled
servers with any of the tags, else enabled servers offering the tool; denied targets become
`errors[server] = "denied: <reason>"`; results keep the same `{tool_name, total_servers,
successful, failed, execution_time_ms, results, errors}` shape.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from mcpgw.client import output
from mcpgw.client.errors import ApiError, CallFailed, UsageError
from mcpgw.client.http import GatewayClient, run
from mcpgw.client.progress import FAILED, OK, Progress
from mcpgw.client.reads import client, parse_params, server_rows


def split_list(text: str | None) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(p.strip() for p in (text or "").split(",") if p.strip()))


def raw_message(exc: CallFailed) -> str:
    """The gateway's own message for a failed per-server call, as /mcp/invoke-broadcast words it."""
    if isinstance(exc, ApiError):
        err = exc.body.get("error") if isinstance(exc.body, dict) else None
        message = str(err.get("message")) if isinstance(err, dict) and err.get("message") else exc.message
        return f"denied: {message}" if exc.status == 403 else message
    return exc.message


async def plan(gw: GatewayClient, tool: str, servers: list[str], tags: list[str]) -> list[str]:
    """Targets by the gateway's rules, from what the caller can see."""
    if servers:
        return servers
    rows = [r for r in server_rows(await gw.get("/mcp/servers")) if r.get("enabled", True)]
    if tags:
        wanted = set(tags)
        return [r["name"] for r in rows if wanted.intersection(r.get("tags") or [])]
    names = [r["name"] for r in rows]
    listed = await asyncio.gather(
        *(gw.get("/mcp/list-tools", {"mcp_server": n}) for n in names), return_exceptions=True
    )
    offering = []
    for name, body in zip(names, listed, strict=True):
        if isinstance(body, dict) and any(t.get("name") == tool for t in body.get("tools") or []):
            offering.append(name)
    return offering


async def fan_out(gw: GatewayClient, args: argparse.Namespace, params: dict[str, Any]) -> dict[str, Any]:
    """Call each target through /mcp/invoke concurrently, drawing progress as they finish."""
    started = time.perf_counter()
    targets = await plan(gw, args.tool, split_list(args.servers), split_list(args.tags))
    if not targets:
        # What /mcp/invoke-broadcast answers (404) when nothing qualifies.
        raise CallFailed(f"404 not found: no enabled MCP server offers tool '{args.tool}' (among those you may see)")
    progress = Progress(sys.stderr, args.tool, targets)
    progress.draw()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    async def one(name: str) -> None:
        t0 = time.perf_counter()
        try:
            body = await gw.post("/mcp/invoke", {"tool_name": args.tool, "parameters": params}, {"mcp_server": name})
        except CallFailed as exc:
            errors[name] = raw_message(exc)
            progress.update(name, FAILED, output.one_line(errors[name], 60))
            return
        results[name] = body.get("result") if isinstance(body, dict) else body
        ms = f"{(time.perf_counter() - t0) * 1000:.0f} ms"
        if tool_error(results[name]):
            progress.update(name, FAILED, f"tool error: {output.one_line(output.content_text(results[name]), 50)}")
        else:
            progress.update(name, OK, ms)

    await asyncio.gather(*(one(n) for n in targets))
    order = {n: i for i, n in enumerate(targets)}
    return {
        "tool_name": args.tool,
        "total_servers": len(targets),
        "successful": len(results),
        "failed": len(errors),
        "execution_time_ms": round((time.perf_counter() - started) * 1000, 3),
        "results": dict(sorted(results.items(), key=lambda kv: order[kv[0]])),
        "errors": dict(sorted(errors.items(), key=lambda kv: order[kv[0]])),
    }


def tool_error(result: Any) -> bool:
    """A result the tool itself marked as failed (MCP `isError`)."""
    return isinstance(result, dict) and bool(result.get("isError"))


def all_succeeded(body: Any) -> bool:
    """Exit-0 test: at least one target, none failed, and no tool answered `isError`."""
    if not isinstance(body, dict) or body.get("failed") or not body.get("successful"):
        return False
    return not any(tool_error(r) for r in (body.get("results") or {}).values())


def want_progress(args: argparse.Namespace) -> bool:
    """Progress only for humans: a terminal on both streams and not JSON output."""
    if args.format == "json" or args.progress == "never":
        return False
    return args.progress == "always" or (sys.stdout.isatty() and sys.stderr.isatty())


def render(body: dict[str, Any], fmt: str) -> str:
    """Summary table or full per-server results."""
    results, errors = body.get("results") or {}, body.get("errors") or {}
    tool_errors = sum(1 for r in results.values() if tool_error(r))
    head = (
        f"{output.printable(body.get('tool_name'))}: {body.get('successful', 0)}/{body.get('total_servers', 0)} servers "
        f"succeeded, {body.get('failed', 0)} failed"
        + (f" ({tool_errors} of them with a tool error)" if tool_errors else "")
        + f" ({float(body.get('execution_time_ms') or 0):.1f} ms)"
    )
    if fmt == "full":
        parts = [head]
        for name, result in results.items():
            parts.append(f"== {output.printable(name)} ({'tool error' if tool_error(result) else 'ok'})\n{output.content_full(result)}")
        for name, message in errors.items():
            parts.append(f"== {output.printable(name)} (failed)\n{output.printable(message, keep_newlines=True)}")
        return "\n".join(parts)
    rows = [[n, "error" if tool_error(r) else "ok", output.one_line(output.content_text(r), 70)] for n, r in results.items()]
    rows += [[n, "failed", output.one_line(str(m), 70)] for n, m in errors.items()]
    return head + ("\n" + output.table(["SERVER", "STATUS", "DETAIL"], rows) if rows else "\nno target servers")


def cmd_invoke_broadcast(args: argparse.Namespace) -> int:
    """Run one tool on many servers; exit 0 only if every target succeeded."""
    if args.servers and args.tags:
        raise UsageError("give either --servers or --tags, not both")
    params = parse_params(args.params, args.params_file)
    fmt = "json" if args.json else args.format
    args.format = fmt

    async def go() -> dict[str, Any]:
        async with client(args) as gw:
            if want_progress(args):
                return await fan_out(gw, args, params)
            body: dict[str, Any] = {"tool_name": args.tool, "parameters": params}
            if args.servers:
                body["mcp_servers"] = split_list(args.servers)
            if args.tags:
                body["tags"] = split_list(args.tags)
            return await gw.post("/mcp/invoke-broadcast", body)

    body = run(go())
    if fmt == "json":
        output.print_json(body)
    else:
        print(render(body, fmt))
    return 0 if all_succeeded(body) else 1
