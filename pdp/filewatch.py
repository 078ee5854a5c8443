"""File mode: read the policy file only when it is complete, and reload it when it changes.

A file is "complete" when it has stopped changing: its identity (inode, mtime, size) must stay the
same for `settle` seconds, and again across the read itself. That keeps a file that an editor or
`cp` is still writing from ever being compiled, even when a prefix of it is a valid policy (a
policy cut before its deny rules is valid YAML, and more permissive). Writers that replace the
file atomically (write elsewhere, then rename) are safe regardless of timing.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pdp.metrics import PdpMetrics

log = logging.getLogger(__name__)

Mark = tuple[int, int, int]


def file_mark(path: Path) -> Mark:
    """What identifies one state of the file: (inode, mtime in ns, size)."""
    stat = os.stat(path)
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def read_consistent(path: Path) -> tuple[str, Mark] | None:
    """The text and its mark, or None when the file changed while it was read."""
    before = file_mark(path)
    text = path.read_text()
    return (text, before) if file_mark(path) == before else None


class Settler:
    """Decides, poll by poll, when a changed file has been still long enough to load (pure)."""

    def __init__(self, loaded: Mark | None, settle: float) -> None:
        self.loaded = loaded
        self.settle = settle
        self.pending: Mark | None = None
        self.since = 0.0

    def ready(self, mark: Mark, now: float) -> bool:
        """Whether `mark`, seen at `now`, is a change that has stayed unchanged for `settle`."""
        if mark == self.loaded:
            self.pending = None
            return False
        if mark != self.pending:
            self.pending, self.since = mark, now
        return now - self.since >= self.settle


async def watch(path: Path, interval: float, settle: float, loaded: Mark | None,
                apply: Callable[[str], Awaitable[None]], metrics: PdpMetrics | None = None) -> None:
    """Poll forever; call `apply(text)` once per settled change. `apply` errors are logged, once (and
    counted by `apply`); a file that is not text never reaches it, so it is counted here."""
    settler = Settler(loaded, settle)
    loop = asyncio.get_running_loop()
    problem = ""
    while True:
        await asyncio.sleep(interval)
        try:
            mark = await asyncio.to_thread(file_mark, path)
            if not settler.ready(mark, loop.time()):
                continue
            read = await asyncio.to_thread(read_consistent, path)
        except OSError as exc:
            if str(exc) != problem:  # a missing file is reported once, not every interval
                problem = str(exc)
                log.error("policy file unreadable; keeping the active policy: %s", exc)
            continue
        except ValueError as exc:  # not UTF-8 (say, cut inside a multi-byte character)
            settler.loaded = mark
            log.error("policy file %s rejected; keeping the active policy: %s", path, exc)
            if metrics is not None:
                metrics.reloads.labels("failed").inc()
            continue
        problem = ""
        if read is None:
            settler.pending = None  # still being written: wait for it to settle again
            continue
        text, settler.loaded = read  # a rejected edit is reported once, not every interval
        try:
            await apply(text)
        except Exception as exc:
            log.error("policy file %s rejected; keeping the active policy: %s", path, exc)
