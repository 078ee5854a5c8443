"""Run `python -m gateway ARGS` counting work, not time: figures a busy machine cannot move.

    python bench/tally_gateway.py FILE [gateway args...]

Counts, in every thread, Python function calls (a coroutine's resumptions are counted apart:
how often it is resumed depends on timing), calls of C functions, and garbage collections per
generation (with the objects they examined). On SIGUSR1 it writes the totals so far to FILE as
JSON (replacing it atomically), with a `seq` that grows by one per snapshot; `bench_gateway.py
--count` snapshots before and after a fixed number of calls and divides. The counting slows the
gateway several times over: its times mean nothing, its counts are the point.
"""

from __future__ import annotations

import dis
import gc
import json
import os
import runpy
import signal
import sys
import threading
from types import CodeType, FrameType
from typing import Any

_GENERATOR_LIKE = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR


def main() -> None:
    """Count until the gateway exits; snapshot on SIGUSR1."""
    out = sys.argv[1]
    sys.argv = ["gateway", *sys.argv[2:]]
    totals = {"calls": 0, "resumes": 0, "c_calls": 0}
    starts: dict[CodeType, int] = {}  # generator-like code -> offset of its first RESUME
    collections = [0, 0, 0]
    examined = [0, 0, 0]  # objects in the generations collected (what a collection walks)
    seq = 0

    def first_resume(code: CodeType) -> int:
        offset = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        starts[code] = offset
        return offset

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if code.co_flags & _GENERATOR_LIKE:
                start = starts.get(code)
                if frame.f_lasti > (first_resume(code) if start is None else start):
                    totals["resumes"] += 1
                    return
            totals["calls"] += 1
        elif event == "c_call":
            totals["c_calls"] += 1

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            sys.setprofile(None)  # the counting's own calls are not the gateway's
            generation = info["generation"]
            collections[generation] += 1
            examined[generation] += sum(len(gc.get_objects(g)) for g in range(generation + 1))
            sys.setprofile(profile)

    def snapshot(_signum: int, _frame: object) -> None:
        nonlocal seq
        seq += 1
        data = {"seq": seq, **totals, "gc_collections": collections, "gc_examined": examined,
                "allocated_blocks": sys.getallocatedblocks(), "gc_objects": len(gc.get_objects())}
        with open(out + ".tmp", "w") as fh:
            json.dump(data, fh)
        os.replace(out + ".tmp", out)

    gc.callbacks.append(on_gc)
    signal.signal(signal.SIGUSR1, snapshot)
    threading.setprofile(profile)
    sys.setprofile(profile)
    runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
