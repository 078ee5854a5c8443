"""`mcpgw pdp serve` and `mcpgw policy validate|compile|test|explain|push|history`."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pdp import cli_policy
from shared.clierror import error

if TYPE_CHECKING:
    from pdp.settings import PdpSettings


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `pdp` and `policy` command groups."""
    pdp = subparsers.add_parser("pdp", help="Policy decision point").add_subparsers(dest="pdp_command", metavar="CMD")
    serve = pdp.add_parser("serve", help="Run the PDP HTTP service")
    add_serve_args(serve)
    serve.set_defaults(func=serve_cmd)
    cli_policy.register(subparsers)


def add_serve_args(parser: argparse.ArgumentParser) -> None:
    """Flags of `pdp serve` (each overrides its MCPGW_PDP_* variable)."""
    parser.add_argument("--host", help="Listen address (MCPGW_PDP_HOST)")
    parser.add_argument("--port", type=int, help="Listen port (MCPGW_PDP_PORT, default 8181)")
    parser.add_argument("--policy", type=Path, help="Policy file (MCPGW_PDP_POLICY_FILE or POLICY_FILE)")
    parser.add_argument("--policy-source", choices=("database", "file"), help="MCPGW_PDP_POLICY_SOURCE")
    parser.add_argument("--casbin-model", type=Path,
                        help="Serve a native Casbin model.conf (file mode; with --casbin-policy)")
    parser.add_argument("--casbin-policy", type=Path, help="Native Casbin policy lines for --casbin-model")
    parser.add_argument("--access-mode", choices=("sidecar", "standalone"), help="MCPGW_PDP_ACCESS_MODE")
    parser.add_argument("--config", type=Path, help="Optional YAML settings file")


def serve_cmd(args: argparse.Namespace) -> int:
    """Load settings, build the app, run it."""
    from aiohttp import web

    from pdp.app import create_app
    from pdp.settings import PREFIX, PdpSettings, check_settings
    from shared.logging import setup_logging
    from shared.settings import SettingsError, load_settings

    overrides = {"host": args.host, "port": args.port, "policy_file": args.policy,
                 "policy_source": args.policy_source, "access_mode": args.access_mode,
                 "casbin_model_file": args.casbin_model, "casbin_policy_file": args.casbin_policy}
    if args.casbin_model and not args.policy_source:
        overrides["policy_source"] = "file"  # a native pair given on the command line is file mode
    try:
        settings = load_settings(PdpSettings, PREFIX, yaml_file=args.config, overrides=overrides,
                                 finalize=check_settings)
    except SettingsError as exc:
        error(str(exc))
        return 2
    setup_logging("pdp", settings.log_level, settings.log_format)
    problems = start_problems(settings)
    if problems:
        error("\n  ".join(["cannot start the PDP:", *problems]))
        return 2
    from shared.runtime import new_event_loop, tune_gc

    app = create_app(settings)
    tune_gc(app)
    from pdp.policy import PolicyInvalid

    try:
        web.run_app(app, host=settings.host, port=settings.port, access_log=None, print=None,
                    loop=new_event_loop(settings.event_loop))
    except PolicyInvalid as exc:  # database mode, first start: the file to import is invalid
        error(f"{settings.policy_path}: {exc}")
        return 2
    return 0


def start_problems(settings: PdpSettings) -> list[str]:
    """The policy file (when it is served or followed) and the port, checked before anything starts."""
    from pdp.policy import PolicyInvalid, parse_policy
    from shared.startcheck import extras_problems, port_problem, warn_unknown_variables

    warn_unknown_variables()
    problems: list[str] = []
    path = settings.policy_path
    if settings.policy_source == "file" or settings.policy_follow_file:
        try:
            parse_policy(path.read_text())
        except OSError as exc:
            problems.append(f"{path}: cannot read the policy file: {exc.strerror}")
        except PolicyInvalid as exc:
            problems += [f"{path}:{e.line or '?'}: {e.path or '<document>'}: {e.message}" for e in exc.errors]
    busy = port_problem(settings.host, settings.port, "--port or MCPGW_PDP_PORT")
    return problems + ([busy] if busy else []) + extras_problems(settings.event_loop)


def serve_main(argv: Sequence[str]) -> int:
    """Entry point of `python -m pdp`."""
    parser = argparse.ArgumentParser(prog="python -m pdp", description="Run the PDP HTTP service")
    add_serve_args(parser)
    return serve_cmd(parser.parse_args(argv))
