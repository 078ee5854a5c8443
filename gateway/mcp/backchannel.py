"""Server→client requests the gateway sent to agents on `/mcp`, waiting for the agents' answers.

A backend's sampling / elicitation / roots request reaches the agent under a fresh random id
(never the backend's own: backends' ids collide across the shared upstream session and would let
one agent answer another's request). The agent POSTs its answer to `/mcp`; `answer` hands it to
the call waiting for it, only if the same subject opened it. Entries live in this process: an
answer must reach the replica serving the call (which holds the stream open anyway). At most
`per_subject` requests wait on one subject at a time (MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS): a
backend flooding requests gets an error answer for the rest instead of filling memory.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from gateway.mcp.limits import Slots
from gateway.mcp.protocol import RequestId

PREFIX = "mcpgw-req-"


class TooManyPending(Exception):
    """The subject already has its limit of unanswered server→client requests."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"too many requests waiting for the client's answers (limit {limit}, "
                         "MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS)")
        self.limit = limit


class Pending:
    """Outstanding server→client requests by gateway id."""

    def __init__(self, per_subject: int) -> None:
        self._waiting: dict[str, tuple[str, asyncio.Future[dict[str, Any]]]] = {}
        self.subjects = Slots(per_subject)

    def open(self, subject: str) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """A new id for a request to `subject`, and the future its answer will resolve (TooManyPending)."""
        if not self.subjects.take(subject):
            raise TooManyPending(self.subjects.limit)
        gid = PREFIX + secrets.token_urlsafe(16)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[gid] = (subject, future)
        return gid, future

    def answer(self, subject: str, gid: RequestId, message: dict[str, Any]) -> bool:
        """Deliver an agent's response; False when the id is unknown, closed or someone else's."""
        entry = self._waiting.get(gid) if isinstance(gid, str) else None
        if entry is None or entry[0] != subject or entry[1].done():
            return False
        entry[1].set_result(message)
        return True

    def close(self, gid: str) -> None:
        """Forget a request (answered, or its call ended)."""
        entry = self._waiting.pop(gid, None)
        if entry is None:
            return
        self.subjects.give(entry[0])
        if not entry[1].done():
            entry[1].cancel()

    def __len__(self) -> int:
        return len(self._waiting)
