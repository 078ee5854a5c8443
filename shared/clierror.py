"""One error style for every `mcpgw` command: `mcpgw: error: MESSAGE` on stderr.

Listings of several problems in files keep the compiler form `FILE:LINE: PATH: MESSAGE` (one per
line, so editors can jump to them); everything else goes through `error()`.
"""

from __future__ import annotations

import sys

from shared.textsafe import printable

PREFIX = "mcpgw: error: "


def error(message: str) -> None:
    """Print one error (possibly several lines) the way every command does, escaped for a terminal
    (an error may quote a tool name or a backend's message)."""
    print(PREFIX + printable(message, keep_newlines=True), file=sys.stderr)
