"""`mcpgw gateway serve` (and the shorthand `mcpgw serve`): run the gateway.

Flags override `MCPGW_GATEWAY_*` env vars (and the legacy names, see gateway/settings.py), which
override an optional YAML file given with `--config`. A bad setting exits 2 listing every problem.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gateway.settings import GatewaySettings, load_gateway_settings
from shared.clierror import error
from shared.settings import SettingsError


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """The serve flags (shared by `gateway serve` and `serve`)."""
    parser.add_argument("--host", help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="listen port (default 8000)")
    parser.add_argument("--servers", dest="servers_file", type=Path, help="backend registry (mcp_servers.yaml)")
    parser.add_argument("--pdp-url", help="PDP base URL (default http://127.0.0.1:8181)")
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument("--issuer", help="OIDC issuer URL (discovery finds the JWKS)")
    auth.add_argument("--jwks-url", help="JWKS URL")
    parser.add_argument("--audience", help="required token audience")
    parser.add_argument(
        "--no-auth", action="store_true", default=None,
        help="DEVELOPMENT ONLY: accept every request as the fixed subject 'dev' (no admin rights)",
    )
    parser.add_argument(
        "--no-auth-allow-remote", action="store_true", default=None,
        help="DEVELOPMENT ONLY: let --no-auth listen beyond loopback (logged loudly at start)",
    )
    parser.add_argument("--workers", type=int, help="processes serving the port (default 1; SO_REUSEPORT)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)  # one of --workers' children
    parser.add_argument("--config", type=Path, help="YAML file with settings (lowest precedence)")
    parser.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Settings given on the command line (None = not given)."""
    names = ("host", "port", "workers", "servers_file", "pdp_url", "issuer", "jwks_url", "audience", "no_auth",
             "no_auth_allow_remote", "log_level")
    return {name: getattr(args, name, None) for name in names}


def serve(args: argparse.Namespace) -> int:
    """Run until interrupted; 2 on a configuration error."""
    try:
        settings = load_gateway_settings(overrides=overrides(args), yaml_file=getattr(args, "config", None))
    except SettingsError as exc:
        error(str(exc))
        return 2
    from aiohttp import web

    from gateway.app import create_app
    from shared.logging import setup_logging

    setup_logging("gateway", settings.log_level, settings.log_format)
    worker = bool(getattr(args, "worker", False))
    problems = start_problems(settings, port_shared=worker)
    if problems:
        error("\n  ".join(["cannot start the gateway:", *problems]))
        return 2
    if settings.workers > 1 and not worker:
        from gateway.workers import supervise

        return supervise(settings.workers, getattr(args, "argv", sys.argv[1:]), settings.mcp_session_secret is not None,
                         settings.peer_listen is not None)
    try:
        app = create_app(settings)
    except (ValueError, SettingsError) as exc:
        error(str(exc))
        return 2
    from shared.runtime import new_event_loop, tune_gc

    tune_gc(app)
    web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None, reuse_port=worker or None,
                loop=new_event_loop(settings.event_loop))
    return 0


def start_problems(settings: GatewaySettings, port_shared: bool = False) -> list[str]:
    """What would stop the start, found before anything starts: servers file, port (not for a
    worker: its siblings hold it); unknown variables warned."""
    import os

    from gateway.registry import start_problems as servers_file_problems
    from shared.startcheck import extras_problems, port_problem, warn_unknown_variables

    warn_unknown_variables()
    # Credential references too, in this process's environment: the registry resolves them at start.
    problems = servers_file_problems(settings.servers_file, settings.upstream_allowlist or None, os.environ)
    busy = None if port_shared else port_problem(settings.host, settings.port, "--port or MCPGW_GATEWAY_PORT")
    return problems + ([busy] if busy else []) + extras_problems(settings.event_loop)


def register(subparsers: Any) -> None:
    """Add `gateway serve` and the `serve` shorthand."""
    gateway = subparsers.add_parser("gateway", help="the gateway service")
    sub = gateway.add_subparsers(dest="gateway_command", metavar="COMMAND")
    gateway.set_defaults(func=lambda _args: (gateway.print_help(), 2)[1])
    for p in (sub.add_parser("serve", help="run the gateway", description=__doc__),
              subparsers.add_parser("serve", help="run the gateway (shorthand for `gateway serve`)", description=__doc__)):
        add_serve_arguments(p)
        p.set_defaults(func=serve)
