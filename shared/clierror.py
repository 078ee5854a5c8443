"""One error style for every `mcpgw` command: `mcpgw: error: MESSAGE` on stderr.

Listings of several problems in files keep the compiler form `FILE:LINE: PATH: MESSAGE` (one per
line, so editors can jump to them); everything else goes through `error()`.
"""

from __future__ import annotations

import sys

PREFIX = "mcpgw: error: "


def error(message: str) -> None:
    """Print one error (possibly several lines) the way every command does."""
    print(PREFIX + message, file=sys.stderr)
