"""`notifications/cancelled` on `/mcp` (2025 era): the client's request id → the call in progress.

A 2025 client cancels a request by sending `notifications/cancelled` with its id; closing the
connection is explicitly *not* a cancellation in that era. Requests are tracked by
(subject, session, client request id), so a cancel only reaches a request of the same caller's
same session. Cancelling one cancels its handler task: the upstream stream is closed, and a
2025-era backend is also sent `notifications/cancelled` naming the gateway's own upstream id
(`BackendClient.cancel_soon`), so its handler stops. The handler then ends the answer without a JSON-RPC
response (the spec: the receiver of a cancellation does not answer the request).

The map lives on the replica running the call: a cancel that a load balancer sends to another
replica is not relayed there (docs/mcp.md). 2026-07-28 clients cancel by closing the connection
(streams.until_disconnect).
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

