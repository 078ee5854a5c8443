"""Server→client requests the gateway sent to agents on `/mcp`, waiting for the agents' answers.

A backend's sampling / elicitation / roots request reaches the agent under a fresh random id
(never the backend's own: backends' ids collide across the shared upstream session and would let
one agent answer another's request). The agent POSTs its answer to `/mcp`; `answer` hands it to
the call waiting for it, only if the same subject opened it. Entries live in this process; with
peers configured the id names its owner (peers.py), so an answer posted to another replica is
forwarded here (peer_link.py). At most
`per_subject` requests wait on one subject at a time (MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS): a
backend flooding requests gets an error answer for the rest instead of filling memory.

`HeldCalls` keeps the calls bridge.py holds for a 2026-07-28 agent's retry, by the requestState
minted for them (bounded, expiring; see bridge.py). Its tokens name their owner too.
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any, Protocol

from gateway.mcp import protocol
from gateway.mcp.limits import Slots
from gateway.mcp.peers import mint
from gateway.mcp.protocol import RequestId, RpcFailure

PREFIX = "mcpgw-req-"
INVALID_STATE = "Invalid or expired requestState"


def invalid_state() -> RpcFailure:
    """The one answer to a requestState that continues nothing (unknown, someone else's, used, expired, owner gone)."""
    return RpcFailure(protocol.INVALID_PARAMS, INVALID_STATE, {"reason": "invalid_request_state"})


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
        self.route = ""  # this replica's route, named in the ids it mints (set when peers are on)

    def open(self, subject: str) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """A new id for a request to `subject`, and the future its answer will resolve (TooManyPending)."""
        if not self.subjects.take(subject):
            raise TooManyPending(self.subjects.limit)
        gid = mint(PREFIX, self.route, secrets.token_urlsafe(16))
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


STATE_PREFIX = "mcpgw-state-"


class Holdable(Protocol):
    """What the registry needs of a held call (bridge.Held)."""

    owner: tuple[Any, ...]

    def end(self, reason: str) -> None:
        """Stop the call: its backend request is cancelled."""


class InvalidState(Exception):
    """A retry's requestState is not one of this replica's held calls for this caller (or expired)."""


class TooManyHeld(Exception):
    """The subject, or the gateway, already holds its limit of calls waiting for a retry."""


class HeldCalls:
    """Backend calls held open across a 2026-07-28 agent's retries, by the requestState minted for them.

    A token is 32 random bytes, used once (each round mints a new one) and honoured only for the
    owner it was minted for (subject, server, tool, arguments). A parked call not claimed within
    `timeout` seconds is ended. Calls are counted from their first park to their end, at most
    `per_subject` per subject and `total` in all.
    """

    def __init__(self, per_subject: int, total: int, timeout: float) -> None:
        self.subjects = Slots(per_subject)
        self.total, self.timeout, self.held = total, timeout, 0
        self._parked: dict[str, tuple[Holdable, asyncio.TimerHandle]] = {}
        self.route = ""  # as Pending's

    def take(self, subject: str) -> None:
        """Count one more held call of `subject` (TooManyHeld past a limit)."""
        if self.held >= self.total:
            raise TooManyHeld(f"too many calls waiting for agents' input (limit {self.total}, "
                              "MCPGW_GATEWAY_MCP_MAX_HELD_CALLS)")
        if not self.subjects.take(subject):
            raise TooManyHeld(f"too many of this caller's calls waiting for its input (limit {self.subjects.limit}, "
                              "MCPGW_GATEWAY_MCP_MAX_HELD_CALLS_PER_SUBJECT)")
        self.held += 1

    def give(self, subject: str) -> None:
        """Release what `take` counted (the call ended)."""
        self.subjects.give(subject)
        self.held -= 1

    def park(self, call: Holdable) -> str:
        """Keep `call` until its retry claims the returned token, or end it after `timeout` seconds."""
        token = mint(STATE_PREFIX, self.route, secrets.token_urlsafe(32))
        timer = asyncio.get_running_loop().call_later(self.timeout, self._expire, token)
        self._parked[token] = (call, timer)
        return token

    def claim(self, token: str, owner: tuple[Any, ...]) -> Holdable:
        """The call parked under `token` for `owner`, taken out (InvalidState otherwise; the call stays)."""
        entry = self._parked.get(token)
        if entry is None or entry[0].owner != owner:
            raise InvalidState()
        del self._parked[token]
        entry[1].cancel()
        return entry[0]

    def _expire(self, token: str) -> None:
        entry = self._parked.pop(token, None)
        if entry is not None:
            entry[0].end(f"no retry within {self.timeout:g} s (MCPGW_GATEWAY_MCP_INPUT_TIMEOUT)")

    def close(self) -> None:
        """End every parked call (shutdown)."""
        for token in list(self._parked):
            entry = self._parked.pop(token)
            entry[1].cancel()
            entry[0].end("the gateway is shutting down")

    def __len__(self) -> int:
        return len(self._parked)

