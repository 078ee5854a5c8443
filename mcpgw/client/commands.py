"""The client commands' argparse tree; handlers live in one module per concern."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from mcpgw.client import fanout, health, reads, token
from mcpgw.client import register as register_cmds
from mcpgw.client.config import resolve
from mcpgw.client.errors import CliError
from shared.textsafe import printable

Handler = Callable[[argparse.Namespace], int]


def handle(func: Handler, *, needs_config: bool = True) -> Handler:
    """Wrap a handler: resolve flags/env/config, turn CliError into a message and exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            if needs_config:
                args.cfg = resolve(vars(args), config=getattr(args, "config", None))
            return func(args)
        except CliError as exc:
            print(f"mcpgw: error: {printable(exc.message, keep_newlines=True)}", file=sys.stderr)
            return exc.exit_code

    return run


def _connection_flags() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="config file (default ~/.config/mcpgw/config.yaml)")
    common.add_argument("--timeout", type=float, help="seconds to wait for an answer (default 30)")
    return common


def _gateway_flags(conn: argparse.ArgumentParser) -> argparse.ArgumentParser:
    gw = argparse.ArgumentParser(add_help=False, parents=[conn])
    gw.add_argument("--url", help="gateway URL (default $MCPGW_URL or http://127.0.0.1:8000)")
    gw.add_argument("--token", help="bearer token (prefer $MCPGW_TOKEN: flags show in the process list)")
    gw.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    return gw


def _params_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--params", metavar="JSON", help='tool arguments as a JSON object, e.g. \'{"q": 1}\'')
    p.add_argument("--params-file", metavar="FILE", help="tool arguments from a JSON file ('-' = stdin)")


def register(subparsers: Any) -> None:
    """Add register-mcp, unregister-mcp, list-servers, list-tools, invoke, invoke-broadcast, token, health."""
    conn = _connection_flags()
    gw = _gateway_flags(conn)
    register_cmds.add_parsers(subparsers, lambda f: handle(f, needs_config=False))

    p = subparsers.add_parser("list-servers", parents=[gw], help="list the MCP servers you may see",
                              description="List the backends the gateway lets you see.")
    p.set_defaults(func=handle(reads.cmd_list_servers))

    p = subparsers.add_parser("list-tools", parents=[gw], help="list one server's tools",
                              description="List the tools of one backend that the policy lets you see.")
    p.add_argument("server", help="server name")
    p.set_defaults(func=handle(reads.cmd_list_tools))

    p = subparsers.add_parser("invoke", parents=[gw], help="call one tool on one server",
                              description="Call a tool through the gateway. Exit 1 if denied or the tool fails.")
    p.add_argument("server", help="server name")
    p.add_argument("tool", help="tool name")
    _params_flags(p)
    p.set_defaults(func=handle(reads.cmd_invoke))

    p = subparsers.add_parser(
        "invoke-broadcast", parents=[gw], help="call one tool on many servers",
        description="Call a tool on the named servers, else on servers with any of the tags, else on "
        "every server offering it. In a terminal, shows each server's outcome as it arrives. "
        "Exit 0 only if every target succeeded.",
    )
    p.add_argument("tool", help="tool name")
    p.add_argument("--servers", metavar="S1,S2", help="comma-separated server names")
    p.add_argument("--tags", metavar="T1,T2", help="comma-separated tags")
    _params_flags(p)
    p.add_argument("--format", choices=("summary", "full", "json"), default="summary", help="output (default summary)")
    p.add_argument("--progress", choices=("auto", "always", "never"), default="auto",
                   help="live per-server progress on stderr (auto: only in a terminal)")
    p.set_defaults(func=handle(fanout.cmd_invoke_broadcast))

    token.add_parser(subparsers, handle, conn)
    health.add_parser(subparsers, handle, gw)
