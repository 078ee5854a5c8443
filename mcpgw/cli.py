"""The `mcpgw` console script: one argparse tree; each package registers its own subcommands.

argparse is stdlib (no extra dependency for a security tool), gives `--help` on every command and
usage errors exit 2, which is the exit code scripts get for usage/config errors.
Exit codes: 0 ok, 1 call failed or denied, 2 usage or configuration error.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import gateway.cli
import mcpgw.client
import pdp.cli
from gateway.servers_file import RegistryError
from shared import audit_cli
from shared.clierror import UsageParser
from shared.settings import SettingsError

# Modules exposing `register(subparsers)`; each adds commands whose handler is set with
# `parser.set_defaults(func=callable(args) -> int)`.
COMMAND_MODULES = (pdp.cli, gateway.cli, mcpgw.client, audit_cli)


def build_parser() -> argparse.ArgumentParser:
    """The full command tree (every subcommand's parser is a `UsageParser` too: one error style)."""
    parser = UsageParser(prog="mcpgw", description="MCP security gateway and policy tools")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=UsageParser)
    for module in COMMAND_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the chosen command."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # The command as given: `gateway serve --workers N` starts N copies of it.
    args.argv = list(sys.argv[1:] if argv is None else argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `mcpgw audit query ... | head`: the reader left; not an error worth a traceback.
        _silence_stdout()
        return 1
    except (RegistryError, SettingsError) as exc:
        # A configuration error found late (say, a servers file that changed after the start checks):
        # still a configuration error, exit 2, never "unexpected".
        from shared.clierror import error

        error(str(exc))
        return 2
    except Exception as exc:  # noqa: BLE001 - the last line of defence, see unexpected()
        return unexpected(exc)


def unexpected(exc: BaseException) -> int:
    """A bug or an unforeseen failure: one line on stderr (credentials masked), exit 1.

    A traceback can carry a library's message quoting a header or URL, so it is shown only when
    MCPGW_DEBUG is set.
    """
    import os
    import traceback

    from shared.redact import mask_secrets

    if os.environ.get("MCPGW_DEBUG"):
        traceback.print_exc()
    detail = mask_secrets(str(exc))[:500]
    from shared.clierror import error

    error(f"unexpected {type(exc).__name__}{': ' + detail if detail else ''} (set MCPGW_DEBUG=1 for the traceback)")
    return 1


def _silence_stdout() -> None:
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
