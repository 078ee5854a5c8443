"""Live per-server progress for `invoke-broadcast` in a terminal: redraws one line per server."""

from __future__ import annotations

import time
from typing import TextIO

from shared.textsafe import printable

PENDING, OK, FAILED = "pending", "ok", "failed"
_MARK = {PENDING: "…", OK: "✓", FAILED: "✗"}


class Progress:
    """Keeps the state of each server and redraws the block in place with ANSI cursor moves."""

    def __init__(self, out: TextIO, tool: str, servers: list[str]) -> None:
        self.out = out
        self.tool = tool
        self.state = {name: PENDING for name in servers}
        self.detail: dict[str, str] = {}
        self.started = time.perf_counter()
        self._drawn = 0
        self._width = max((len(printable(s)) for s in servers), default=0)

    def update(self, server: str, state: str, detail: str = "") -> None:
        """Record one server's outcome and redraw."""
        self.state[server] = state
        self.detail[server] = detail
        self.draw()

    def lines(self) -> list[str]:
        """The block as plain text lines (also what tests read)."""
        done = sum(1 for s in self.state.values() if s != PENDING)
        failed = sum(1 for s in self.state.values() if s == FAILED)
        head = f"{printable(self.tool)}: {done}/{len(self.state)} answered, {failed} failed, {len(self.state) - done} pending"
        rows = [head]
        for name, state in self.state.items():
            detail = printable(self.detail.get(name, ""))
            rows.append(f"  {_MARK[state]} {printable(name).ljust(self._width)}  {state}{'  ' + detail if detail else ''}")
        return rows

    def draw(self) -> None:
        """Move up over the previous block, clear each line, write the new one."""
        lines = self.lines()
        if self._drawn:
            self.out.write(f"\x1b[{self._drawn}F")
        self.out.write("".join(f"\x1b[2K{line}\n" for line in lines))
        self.out.flush()
        self._drawn = len(lines)
