"""`mcpgw register-mcp` / `unregister-mcp`: edit the servers file, validated, atomically."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from mcpgw.client import servers_file
from mcpgw.client.errors import UsageError
from shared.textsafe import printable

DEFAULT_SERVERS_FILE = "mcp_servers.yaml"
AUTH_FIELDS = ("method", "location", "name", "format", "prefix", "template", "credential_ref",
               "token_url", "client_id", "client_secret_ref", "scope", "audience")


def servers_path(args: argparse.Namespace) -> Path:
    """--servers-file, else MCPGW_GATEWAY_SERVERS_FILE, else ./mcp_servers.yaml."""
    return Path(args.servers_file or os.environ.get("MCPGW_GATEWAY_SERVERS_FILE") or DEFAULT_SERVERS_FILE)


def build_entry(args: argparse.Namespace) -> dict[str, Any]:
    """The servers-file entry for the flags given, keys in the documented order."""
    entry = _transport(args)
    if args.timeout is not None:
        entry["timeout"] = args.timeout
    entry["enabled"] = args.enabled
    if args.description:
        entry["description"] = args.description
    tags = [t.strip() for t in (args.tags or "").split(",") if t.strip()]
    if tags:
        entry["tags"] = tags
    auth = {field: getattr(args, f"auth_{field}") for field in AUTH_FIELDS}
    auth = {k: v for k, v in auth.items() if v is not None}
    if auth:
        if "method" not in auth:
            raise UsageError("--auth-* options need --auth-method (api_key|bearer|basic|oauth2|custom|none)")
        entry["auth"] = auth
    return entry


def _transport(args: argparse.Namespace) -> dict[str, Any]:
    """`url` + `type` for an HTTP backend, or `type: stdio` + command, args, env, cwd."""
    if args.command is None:
        if args.url is None:
            raise UsageError("give the backend's URL, or --command to launch a stdio server")
        if args.args or args.env or args.cwd:
            raise UsageError("--arg, --env and --cwd need --command")
        return {"url": args.url, "type": args.type}
    if args.url is not None:
        raise UsageError("give a URL or --command, not both (a stdio server has no URL)")
    entry: dict[str, Any] = {"type": "stdio", "command": args.command}
    if args.args:
        entry["args"] = list(args.args)
    env = {}
    for item in args.env or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--env takes NAME=VALUE (or NAME=env://VAR), got {item!r}")
        env[key] = value
    if env:
        entry["env"] = env
    if args.cwd:
        entry["cwd"] = args.cwd
    return entry


def validate(document: dict[str, Any]) -> list[str]:
    """Every problem the gateway itself would report when loading this file."""
    from gateway.registry import parse_servers

    return parse_servers(document)[1]


def cmd_register(args: argparse.Namespace) -> int:
    """Add (or with --replace, overwrite) one backend entry; then ask the running gateway."""
    path = servers_path(args)
    old = servers_file.load_text(path)
    new = servers_file.add_entry(old, args.name, build_entry(args), replace=args.replace, path=path)
    servers_file.check(old, new, args.name, validate, path)
    servers_file.write_atomic(path, new)
    verb = "updated" if args.replace and args.name in (servers_file.names(old)) else "registered"
    print(f"{verb} {args.name} -> {args.url or 'stdio: ' + args.command} in {path.resolve()}", file=sys.stderr)
    return after_write(args, path, verb)


def cmd_unregister(args: argparse.Namespace) -> int:
    """Remove one backend entry; then ask the running gateway."""
    path = servers_path(args)
    old = servers_file.load_text(path)
    if not old:
        raise UsageError(f"{path} does not exist; nothing to unregister")
    new = servers_file.remove_entry(old, args.name, path=path)
    servers_file.check(old, new, args.name, validate, path)
    servers_file.write_atomic(path, new)
    print(f"unregistered {args.name} from {path}", file=sys.stderr)
    return after_write(args, path, "unregistered")


def after_write(args: argparse.Namespace, path: Path, verb: str) -> int:
    """Whether the running gateway took the written file: exit 1, with why, when it did not.

    The file is written first either way: credential references resolve in the gateway's environment,
    which this shell cannot see, so only the gateway can say. What this shell can see is said too.
    """
    from mcpgw.client import takeup
    from mcpgw.client.config import resolve
    from mcpgw.client.http import run

    url = resolve({"url": args.gateway_url}, config=args.config).url
    found = run(takeup.verdict(url, takeup.file_version(path)))
    code, lines = takeup.report(found, path.resolve(), args.name, verb)
    if found.outcome != "refused":
        reasons = takeup.local_reasons(path)
        if reasons:
            lines.append(f"warning: a gateway started from this shell's environment would refuse {path.resolve()} "
                         "(and keep serving its previous backends) until it can read every reference:")
            lines += [f"  {r}" for r in reasons]
    for line in lines:
        print(("mcpgw: " if not line.startswith(" ") else "") + printable(line), file=sys.stderr)
    return code


def add_parsers(subparsers: Any, handle: Any) -> None:
    """register-mcp and unregister-mcp."""
    p = subparsers.add_parser(
        "register-mcp",
        help="add an MCP backend to the servers file",
        description="Add a backend to mcp_servers.yaml, keeping other entries and comments. "
        "The result is validated as the gateway would; a bad entry is refused, nothing written. "
        "Then the running gateway (--gateway-url) is asked whether it took the file: exit 1, with why, when it refuses it.",
    )
    p.add_argument("name", help="server name (1-52 of a-z 0-9 _ -; no '__', no '_' at the end)")
    p.add_argument("url", nargs="?", help="the backend's MCP endpoint (http or https); omit with --command")
    p.add_argument("--command", help="launch a stdio server: the program (type: stdio)")
    p.add_argument("--arg", dest="args", action="append", help="one argument of --command (repeat; --arg=-y for one starting with -)")
    p.add_argument("--env", action="append", help="NAME=VALUE or NAME=env://VAR for the stdio server (repeat)")
    p.add_argument("--cwd", help="working directory of the stdio server")
    p.add_argument("--type", default="http", help="transport type (default: http)")
    p.add_argument("--timeout", type=float, help="per-call timeout in seconds")
    p.add_argument("--enabled", dest="enabled", action="store_true", default=True, help="enabled (default)")
    p.add_argument("--disabled", dest="enabled", action="store_false", help="register but disable")
    p.add_argument("--tags", help="comma-separated tags, e.g. crm,prod")
    p.add_argument("--description", help="free text")
    p.add_argument("--auth-method", choices=("api_key", "bearer", "basic", "oauth2", "custom", "none"))
    p.add_argument("--auth-location", choices=("header", "query", "body"))
    p.add_argument("--auth-name", help="header / query / body field name")
    p.add_argument("--auth-format", choices=("raw", "prefix", "template"))
    p.add_argument("--auth-prefix", help='with --auth-format prefix, e.g. "Bearer "')
    p.add_argument("--auth-template", help='with --auth-format template, e.g. "Token {credential}"')
    p.add_argument(
        "--credential-ref", dest="auth_credential_ref", help="env://NAME or file:///path (never the secret itself)"
    )
    p.add_argument("--token-url", dest="auth_token_url", help="oauth2: the token endpoint (client credentials)")
    p.add_argument("--client-id", dest="auth_client_id", help="oauth2: the client id")
    p.add_argument("--client-secret-ref", dest="auth_client_secret_ref",
                   help="oauth2: env://NAME or file:///path holding the client secret")
    p.add_argument("--scope", dest="auth_scope", help="oauth2: scope to request")
    p.add_argument("--audience", dest="auth_audience", help="oauth2: audience to request")
    p.add_argument("--replace", action="store_true", help="overwrite an existing entry of that name")
    _servers_file_flag(p)
    _gateway_flags(p)
    p.set_defaults(func=handle(cmd_register))

    u = subparsers.add_parser(
        "unregister-mcp",
        help="remove an MCP backend from the servers file",
        description="Remove one backend (and the comment lines directly above it) from mcp_servers.yaml; "
        "then ask the running gateway (--gateway-url) whether it took the file (exit 1 when it refuses it).",
    )
    u.add_argument("name", help="server name")
    _servers_file_flag(u)
    _gateway_flags(u)
    u.set_defaults(func=handle(cmd_unregister))


def _servers_file_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--servers-file",
        metavar="FILE",
        help=f"servers file (default: $MCPGW_GATEWAY_SERVERS_FILE or ./{DEFAULT_SERVERS_FILE})",
    )


def _gateway_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gateway-url", metavar="URL", help="the running gateway to ask whether it took the file "
                   "(default $MCPGW_URL, the config file, or http://127.0.0.1:8000)")
    p.add_argument("--config", metavar="FILE", help="CLI config file naming the gateway URL")
