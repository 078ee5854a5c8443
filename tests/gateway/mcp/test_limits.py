"""Per-key ceilings: stream slots per session and subject, pending server→client requests per subject."""

from __future__ import annotations

import pytest

from gateway.mcp.backchannel import Pending, TooManyPending
from gateway.mcp.limits import Slots, StreamLimits


def test_slots_refuse_past_the_limit_and_forget_empty_keys() -> None:
    slots = Slots(2)
    assert slots.take("a") and slots.take("a")
    assert not slots.take("a")  # the third is refused and holds nothing
    assert slots.held("a") == 2 and slots.take("b")
    slots.give("a")
    assert slots.take("a")
    for key in ("a", "a", "b"):
        slots.give(key)
    assert len(slots) == 0  # nothing held, nothing remembered
    slots.give("never")  # releasing an unknown key is harmless
    assert len(slots) == 0


def test_a_table_of_invented_keys_stays_as_small_as_its_holders() -> None:
    slots = Slots(1)
    for i in range(10_000):
        assert slots.take(i)
        slots.give(i)
    assert len(slots) == 0


def test_stream_limits_name_the_setting_and_release_the_subject_on_a_session_refusal() -> None:
    limits = StreamLimits(per_session=1, per_subject=2)
    assert limits.open("alice", "s1") is None
    refusal = limits.open("alice", "s1")
    assert refusal is not None and "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SESSION" in refusal
    assert limits.subjects.held("alice") == 1  # the refused stream holds no subject slot
    assert limits.open("alice", "s2") is None
    refusal = limits.open("alice", None)
    assert refusal is not None and "MCPGW_GATEWAY_MCP_MAX_STREAMS_PER_SUBJECT" in refusal
    assert limits.open("bob", None) is None  # another subject is not affected
    for subject, session in (("alice", "s1"), ("alice", "s2"), ("bob", None)):
        limits.close(subject, session)
    assert len(limits.subjects) == 0 and len(limits.sessions) == 0


async def test_pending_requests_are_bounded_per_subject_and_freed_on_close() -> None:
    pending = Pending(per_subject=3)
    opened = [pending.open("alice") for _ in range(3)]
    with pytest.raises(TooManyPending) as caught:
        pending.open("alice")
    assert "MCPGW_GATEWAY_MCP_MAX_PENDING_REQUESTS" in str(caught.value) and "3" in str(caught.value)
    assert len(pending) == 3
    bob, _ = pending.open("bob")  # one subject's flood does not block another's
    assert pending.answer("alice", opened[0][0], {"result": {}})
    for gid, _ in opened:
        pending.close(gid)
    pending.close(bob)
    pending.close(bob)  # twice is harmless
    assert len(pending) == 0 and len(pending.subjects) == 0
    pending.open("alice")  # slots came back
