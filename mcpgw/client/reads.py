"""`mcpgw list-servers`, `list-tools` and `invoke`: thin calls plus rendering."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from mcpgw.client import output
from mcpgw.client.errors import CallFailed, UsageError
from mcpgw.client.http import GatewayClient, run


def server_rows(body: Any) -> list[dict[str, Any]]:
    """Normalise `GET /mcp/servers` (a list, or a mapping by name) into a list of dicts with `name`."""
    servers = body.get("servers", body) if isinstance(body, dict) else body
    if isinstance(servers, dict):
        return [{"name": name, **(info if isinstance(info, dict) else {"info": info})} for name, info in servers.items()]
    if isinstance(servers, list):
        return [s if isinstance(s, dict) else {"name": str(s)} for s in servers]
    raise CallFailed(f"unexpected /mcp/servers answer: {str(body)[:200]}")


def parse_params(params: str | None, params_file: str | None) -> dict[str, Any]:
    """Tool arguments from --params JSON or --params-file FILE ('-' = stdin); must be an object."""
    if params is not None and params_file is not None:
        raise UsageError("give either --params or --params-file, not both")
    if params_file is not None:
        try:
            text = sys.stdin.read() if params_file == "-" else Path(params_file).read_text()
        except OSError as exc:
            raise UsageError(f"cannot read --params-file {params_file}: {exc.strerror or exc}") from None
        source = f"--params-file {params_file}"
    elif params is not None:
        text, source = params, "--params"
    else:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{source} must be a JSON object of tool arguments, got {type(value).__name__}")
    return value


def client(args: argparse.Namespace) -> GatewayClient:
    """A gateway client from the resolved flags/env/config."""
    cfg = args.cfg
    return GatewayClient(cfg.url, cfg.token, cfg.timeout)


def cmd_list_servers(args: argparse.Namespace) -> int:
    """Servers the caller may see."""

    async def go() -> Any:
        async with client(args) as gw:
            return await gw.get("/mcp/servers")

    body = run(go())
    if args.json:
        output.print_json(body)
        return 0
    rows = server_rows(body)
    if not rows:
        print("no servers visible (none registered, or the policy hides them)")
        return 0
    headers = ["NAME", "ENABLED", "TAGS", "URL", "DESCRIPTION"]
    keys = ["name", "enabled", "tags", "url", "description"]
    present = [i for i, k in enumerate(keys) if i == 0 or any(k in r for r in rows)]
    print(
        output.table(
            [headers[i] for i in present],
            [[r.get(keys[i]) if keys[i] != "description" else output.one_line(str(r.get(keys[i]) or ""), 60) for i in present] for r in rows],
        )
    )
    return 0


def cmd_list_tools(args: argparse.Namespace) -> int:
    """Tools of one server the caller may use."""

    async def go() -> Any:
        async with client(args) as gw:
            return await gw.get("/mcp/list-tools", {"mcp_server": args.server})

    body = run(go())
    if args.json:
        output.print_json(body)
        return 0
    tools = body.get("tools") or [] if isinstance(body, dict) else []
    if not tools:
        print(f"{output.printable(args.server)}: no tools visible")
        return 0
    rows = [[t.get("name"), output.one_line(str(t.get("description") or ""), 70)] for t in tools]
    print(output.table(["TOOL", "DESCRIPTION"], rows))
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    """Call one tool on one server; exit 1 if the tool reports an error."""
    params = parse_params(args.params, args.params_file)

    async def go() -> Any:
        async with client(args) as gw:
            return await gw.post(
                "/mcp/invoke", {"tool_name": args.tool, "parameters": params}, {"mcp_server": args.server}
            )

    body = run(go())
    result = body.get("result") if isinstance(body, dict) else None
    failed = not (isinstance(body, dict) and body.get("success", True)) or (
        isinstance(result, dict) and bool(result.get("isError"))
    )
    if args.json:
        output.print_json(body)
    else:
        print(output.content_text(result))
        if failed:
            print(f"{output.printable(args.server)}/{output.printable(args.tool)}: the tool reported an error", file=sys.stderr)
    return 1 if failed else 0
