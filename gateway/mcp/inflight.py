"""`notifications/cancelled` on `/mcp` (2025 era; closing the connection is no cancel there): the
client's request id, per (subject, session), → the handler task running it. A cancel reaches only
the same session's requests on this replica (docs/mcp.md); the cancelled request is not answered.
2026-07-28 clients cancel by closing the connection (streams.until_disconnect).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from gateway.mcp.protocol import RequestId

T = TypeVar("T")
Key = tuple[str, str, str, str]  # subject, session id, id type, id: 1 and "1" are different ids


def key(subject: str, session: str, request_id: RequestId) -> Key:
    """The key of one client request."""
    return subject, session, type(request_id).__name__, str(request_id)


def cancelled_id(params: object) -> RequestId:
    """The `requestId` a `notifications/cancelled` names (None when absent or not an id)."""
    rid = params.get("requestId") if isinstance(params, dict) else None
    return rid if isinstance(rid, str | int) and not isinstance(rid, bool) else None


class Cancelled(Exception):
    """The client cancelled this request; it is not answered."""


class InFlight:
    """The requests this replica is working on that a cancel may name."""

    def __init__(self) -> None:
        self._tasks: dict[Key, asyncio.Task[Any]] = {}
        self._cancelled: set[Key] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, k: Key, work: Awaitable[T]) -> T:
        """Await `work` in this task; `Cancelled` if a cancel for `k` arrives first."""
        task = asyncio.current_task()
        assert task is not None
        if k in self._tasks:  # a duplicate id in one session: the first keeps its entry
            return await work
        self._tasks[k] = task
        try:
            return await work
        except asyncio.CancelledError:
            if k not in self._cancelled:
                raise
            task.uncancel()
            raise Cancelled() from None
        finally:
            self._tasks.pop(k, None)
            self._cancelled.discard(k)

    def cancel(self, k: Key) -> bool:
        """Cancel the request `k` if it is still running here."""
        task = self._tasks.get(k)
        if task is None or task.done() or k in self._cancelled:
            return False
        self._cancelled.add(k)
        task.cancel()
        return True

