"""Per-subject lanes on a backend: bounded concurrency, bounded queue, refusal naming the settings."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.upstream.errors import SubjectBusy, UpstreamTimeout
from gateway.upstream.fairness import SubjectLanes


async def test_a_subject_gets_its_concurrency_then_a_queue_then_a_refusal() -> None:
    lanes = SubjectLanes(concurrency=2, queue=1)
    release = asyncio.Event()
    started: list[int] = []

    async def work(i: int) -> None:
        async with lanes.turn("srv", "alice", None):
            started.append(i)
            await release.wait()

    tasks = [asyncio.create_task(work(i)) for i in range(3)]
    await asyncio.sleep(0)
    assert started == [0, 1] and lanes.running("srv", "alice") == 2  # the third waits its turn
    with pytest.raises(SubjectBusy) as caught:
        async with lanes.turn("srv", "alice", None):
            pass
    message = str(caught.value)
    assert "MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY" in message and "MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE" in message
    assert caught.value.http_status == 503
    async with lanes.turn("srv", "bob", None):  # another subject is not held up
        assert lanes.running("srv", "bob") == 1
    async with lanes.turn("other", "alice", None):  # nor the same subject on another backend
        pass
    release.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2] and len(lanes) == 0  # idle lanes are forgotten


async def test_waiting_for_a_turn_is_bounded_by_the_backend_timeout() -> None:
    lanes = SubjectLanes(concurrency=1, queue=5)
    hold = asyncio.Event()

    async def holder() -> None:
        async with lanes.turn("srv", "alice", None):
            await hold.wait()

    task = asyncio.create_task(holder())
    await asyncio.sleep(0)
    with pytest.raises(UpstreamTimeout):
        async with lanes.turn("srv", "alice", 0.01):
            pass
    hold.set()
    await task
    assert len(lanes) == 0


async def test_a_cancelled_waiter_leaves_nothing_behind() -> None:
    lanes = SubjectLanes(concurrency=1, queue=5)
    hold = asyncio.Event()

    async def holder() -> None:
        async with lanes.turn("srv", "alice", None):
            await hold.wait()

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter = asyncio.create_task(holder())
    await asyncio.sleep(0)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    hold.set()
    await first
    assert len(lanes) == 0
