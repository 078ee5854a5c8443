"""Per-subject fairness on each backend: one subject's calls cannot take all of a backend's share.

Each (backend, subject) lane runs at most `concurrency` requests at once; up to `queue` more wait
their turn (first come, first served), and past that a request is refused at once with
`SubjectBusy` (503) rather than queued without bound. Other subjects have lanes of their own, so
40 slow calls of one user leave the connection pool and the backend to everyone else. A lane
exists only while it has a request running or waiting.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

from gateway.upstream.errors import SubjectBusy, UpstreamTimeout


class _Lane:
    __slots__ = ("running", "sem", "waiting")

    def __init__(self, concurrency: int) -> None:
        self.sem = asyncio.Semaphore(concurrency)
        self.running = 0
        self.waiting = 0


class SubjectLanes:
    """Concurrency per (backend, subject) with a bounded wait queue."""

    def __init__(self, concurrency: int = 16, queue: int = 64) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self._lanes: dict[tuple[str, str], _Lane] = {}

    def turn(self, server: str, subject: str, wait: float | None) -> _Turn:
        """Hold one of the subject's slots on `server` (waiting at most `wait` seconds for it)."""
        return _Turn(self, server, subject, wait)

    async def _enter(self, key: tuple[str, str], wait: float | None) -> _Lane:
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(self.concurrency)
        if not lane.sem.locked():
            # A free slot and nobody waiting: take it now, without arming a timer (the common case).
            await lane.sem.acquire()
            lane.running += 1
            return lane
        if lane.running >= self.concurrency and lane.waiting >= self.queue:
            raise SubjectBusy(key[0], self.concurrency + self.queue)
        lane.waiting += 1
        try:
            async with asyncio.timeout(wait):
                await lane.sem.acquire()
        except BaseException as exc:
            lane.waiting -= 1
            self._forget_if_idle(key, lane)
            if isinstance(exc, TimeoutError):
                raise UpstreamTimeout(key[0], wait) from None
            raise
        lane.waiting -= 1
        lane.running += 1
        return lane

    def _leave(self, key: tuple[str, str], lane: _Lane) -> None:
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


class _Turn:
    """`async with lanes.turn(...)`: a plain context manager (a generator-based one cost more
    than the lane itself on every backend call)."""

    __slots__ = ("_key", "_lane", "_lanes", "_wait")

    def __init__(self, lanes: SubjectLanes, server: str, subject: str, wait: float | None) -> None:
        self._lanes = lanes
        self._key = (server, subject)
        self._wait = wait
        self._lane: _Lane | None = None

    async def __aenter__(self) -> None:
        self._lane = await self._lanes._enter(self._key, self._wait)

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._lane is not None:
            lane, self._lane = self._lane, None
            self._lanes._leave(self._key, lane)
