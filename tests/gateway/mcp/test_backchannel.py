"""gateway.mcp.backchannel.HeldCalls: requestStates for held calls — single-use, owner-bound, bounded, expiring."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.mcp.backchannel import STATE_PREFIX, HeldCalls, InvalidState, TooManyHeld


class _Call:
    def __init__(self, subject: str = "carol") -> None:
        self.owner: tuple[Any, ...] = (subject, "ask__tool", {"topic": "t"})
        self.ended: list[str] = []
        self.done = asyncio.Event()

    def end(self, reason: str) -> None:
        self.ended.append(reason)
        self.done.set()


async def test_a_token_is_random_single_use_and_only_for_its_owner() -> None:
    held = HeldCalls(per_subject=4, total=8, timeout=60)
    call = _Call()
    token, other = held.park(call), held.park(_Call())
    assert token.startswith(STATE_PREFIX) and len(token) > len(STATE_PREFIX) + 40 and token != other
    for owner in [("mallory", "ask__tool", {"topic": "t"}), ("carol", "ask__other", {"topic": "t"}),
                  ("carol", "ask__tool", {"topic": "u"})]:
        with pytest.raises(InvalidState):
            held.claim(token, owner)
    assert held.claim(token, call.owner) is call  # the wrong owners did not take it away
    with pytest.raises(InvalidState):
        held.claim(token, call.owner)  # used once
    assert call.ended == []


async def test_held_calls_are_bounded_per_subject_and_in_total() -> None:
    held = HeldCalls(per_subject=2, total=3, timeout=60)
    held.take("carol")
    held.take("carol")
    with pytest.raises(TooManyHeld, match="MCPGW_GATEWAY_MCP_MAX_HELD_CALLS_PER_SUBJECT"):
        held.take("carol")
    held.take("dave")
    with pytest.raises(TooManyHeld, match="MCPGW_GATEWAY_MCP_MAX_HELD_CALLS"):
        held.take("erin")
    held.give("carol")
    held.take("erin")
    assert held.held == 3


async def test_an_unclaimed_call_is_ended_when_its_time_is_up() -> None:
    held = HeldCalls(per_subject=2, total=3, timeout=0.01)
    call, claimed = _Call(), _Call()
    token = held.park(call)
    held.claim(held.park(claimed), claimed.owner)
    await asyncio.wait_for(call.done.wait(), 5)
    assert call.ended == ["no retry within 0.01 s (MCPGW_GATEWAY_MCP_INPUT_TIMEOUT)"]
    assert claimed.ended == [] and len(held) == 0
    with pytest.raises(InvalidState):
        held.claim(token, call.owner)


async def test_shutdown_ends_every_parked_call() -> None:
    held = HeldCalls(per_subject=2, total=3, timeout=60)
    calls = [_Call(), _Call("dave")]
    for call in calls:
        held.park(call)
    held.close()
    assert [c.ended for c in calls] == [["the gateway is shutting down"]] * 2 and len(held) == 0
