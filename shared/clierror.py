"""One error style for every `mcpgw` command: `mcpgw: error: MESSAGE` on stderr.

Several problems in files: one `mcpgw: error: HEADLINE:` line, then each problem indented on its own
line in the compiler form `FILE:LINE: PATH: MESSAGE` (`problems()`), as `make run` and `gateway serve`
list theirs. Usage errors from argparse go the same way (`UsageParser`).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from shared.textsafe import printable

PREFIX = "mcpgw: error: "


def error(message: str) -> None:
    """Print one error (possibly several lines) the way every command does, escaped for a terminal
    (an error may quote a tool name or a backend's message)."""
    print(PREFIX + printable(message, keep_newlines=True), file=sys.stderr)


def problems(headline: str, lines: list[str]) -> None:
    """One error with several problems: the headline, then each problem on its own indented line."""
    error("\n  ".join([headline + ":", *lines]))


class UsageParser(argparse.ArgumentParser):
    """argparse in the same style: `mcpgw: error: MESSAGE (see `PROG --help`)`, exit 2."""

    def error(self, message: str) -> NoReturn:
        """A usage error: the message and where the usage is, instead of argparse's own form."""
        error(f"{message} (see `{self.prog} --help`)")
        sys.exit(2)
