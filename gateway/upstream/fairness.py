"""Per-subject fairness on each backend: one subject's calls cannot take all of a backend's share.

Each (backend, subject) lane runs at most `concurrency` requests at once; up to `queue` more wait
their turn (first come, first served), and past that a request is refused at once with
`SubjectBusy` (503) rather than queued without bound. Other subjects have lanes of their own, so
40 slow calls of one user leave the connection pool and the backend to everyone else. A lane
exists only while it has a request running or waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from gateway.upstream.errors import SubjectBusy, UpstreamTimeout


class _Lane:
    __slots__ = ("running", "sem", "waiting")

    def __init__(self, concurrency: int) -> None:
        self.sem = asyncio.Semaphore(concurrency)
        self.running = 0
        self.waiting = 0


class SubjectLanes:
    """Concurrency per (backend, subject) with a bounded wait queue."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self._lanes: dict[tuple[str, str], _Lane] = {}

    @contextlib.asynccontextmanager
    async def turn(self, server: str, subject: str, wait: float | None) -> AsyncIterator[None]:
        """Hold one of the subject's slots on `server` (waiting at most `wait` seconds for it)."""
        key = (server, subject)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(self.concurrency)
        if lane.running >= self.concurrency and lane.waiting >= self.queue:
            raise SubjectBusy(server, self.concurrency + self.queue)
        lane.waiting += 1
        try:
            async with asyncio.timeout(wait):
                await lane.sem.acquire()
        except BaseException as exc:
            lane.waiting -= 1
            self._forget_if_idle(key, lane)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(server, wait) from None
            raise
        lane.waiting -= 1
        lane.running += 1
        try:
            yield
        finally:
            lane.running -= 1
            lane.sem.release()
            self._forget_if_idle(key, lane)

    def _forget_if_idle(self, key: tuple[str, str], lane: _Lane) -> None:
        if lane.running == 0 and lane.waiting == 0 and self._lanes.get(key) is lane:
            del self._lanes[key]

    def running(self, server: str, subject: str) -> int:
        """Requests the subject has running on `server`."""
        lane = self._lanes.get((server, subject))
        return lane.running if lane is not None else 0

    def __len__(self) -> int:
        return len(self._lanes)
