"""The emitter's queue (a deque and one wake-up Event): bounded, flush waits for what was emitted, the writer idles and wakes."""

from __future__ import annotations

import asyncio
import io

from shared.audit.emitter import AuditEmitter
from shared.audit.event import AuditEvent
from shared.jsonutil import loads


def tools(stream: io.StringIO) -> list[str]:
    return [loads(line)["tool_name"] for line in stream.getvalue().splitlines()]


async def test_flush_waits_for_every_event_emitted_and_the_writer_wakes_again() -> None:
    stream = io.StringIO()
    emitter = AuditEmitter("gateway", stdout=True, stream=stream, flush_interval=30)  # lingering never ends a batch here
    await emitter.start()
    await emitter.flush()  # nothing emitted: returns at once
    for round_ in range(3):  # the writer goes idle between rounds and is woken by the next event
        emitter.emit(AuditEvent("tool_call", "gateway", tool=f"t{round_}"))
        await emitter.flush()
        assert tools(stream)[-1] == f"t{round_}"
    await emitter.close()
    assert tools(stream) == ["t0", "t1", "t2"]


async def test_a_full_queue_spills_through_the_local_sinks_and_every_event_is_counted() -> None:
    stream = io.StringIO()
    emitter = AuditEmitter("gateway", stdout=True, stream=stream, queue_size=2, flush_interval=30)
    await emitter.start()
    for i in range(5):
        emitter.emit(AuditEvent("tool_call", "gateway", tool=f"t{i}"))
    await emitter.flush()
    await asyncio.sleep(0)  # the overflow is written on the loop's next turn (call_soon)
    assert sorted(tools(stream)) == [f"t{i}" for i in range(5)]
    assert emitter.metrics.value(emitter.metrics.queued) == 5
    await emitter.close()
