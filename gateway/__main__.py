"""`python -m gateway [flags]`: the same as `mcpgw gateway serve [flags]`."""

from __future__ import annotations

import argparse
import sys

from gateway.cli import add_serve_arguments, serve


def main(argv: list[str] | None = None) -> int:
    """Parse serve flags and run the gateway."""
    parser = argparse.ArgumentParser(prog="python -m gateway", description="Run the mcpgw gateway")
    add_serve_arguments(parser)
    return serve(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
