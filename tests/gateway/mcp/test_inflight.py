"""gateway.mcp.inflight: which cancel reaches which running request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.mcp import inflight


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"requestId": 7}, 7),
        ({"requestId": "a"}, "a"),
        ({"requestId": True}, None),  # a bool is not a JSON-RPC id
        ({"requestId": 1.5}, None),
        ({}, None),
        (None, None),
    ],
)
def test_cancelled_id(params: Any, expected: Any) -> None:
    assert inflight.cancelled_id(params) == expected


def test_ids_of_different_types_are_different_requests() -> None:
    assert inflight.key("s", "sid", 1) != inflight.key("s", "sid", "1")
    assert inflight.key("s", "sid", 1) != inflight.key("t", "sid", 1)
    assert inflight.key("s", "sid", 1) != inflight.key("s", "other", 1)


async def test_a_cancel_reaches_only_the_request_it_names() -> None:
    running = inflight.InFlight()
    started, never = asyncio.Event(), asyncio.Event()

    async def work() -> str:
        started.set()
        await never.wait()
        return "done"

    k = inflight.key("s", "sid", 7)
    task = asyncio.ensure_future(running.run(k, work()))
    await started.wait()
    assert len(running) == 1
    assert not running.cancel(inflight.key("s", "sid", "7"))
    assert not running.cancel(inflight.key("other", "sid", 7))
    assert running.cancel(k) and not running.cancel(k)  # once
    with pytest.raises(inflight.Cancelled):
        await task
    assert len(running) == 0 and not running.cancel(k)


async def test_a_cancel_of_the_task_itself_stays_a_cancellation() -> None:
    running = inflight.InFlight()
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(running.run(inflight.key("s", "sid", 1), work()))
    await started.wait()
    task.cancel()  # shutdown, not a client's cancel
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(running) == 0


async def test_a_finished_request_answers_normally() -> None:
    running = inflight.InFlight()

    async def work() -> int:
        return 3

    assert await running.run(inflight.key("s", "sid", 1), work()) == 3
    assert len(running) == 0
