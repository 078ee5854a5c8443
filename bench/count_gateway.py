"""Run `python -m gateway ARGS` (or a script) in this process under a counter switched by signals.

    python bench/count_gateway.py FILE [gateway args...]
    python bench/count_gateway.py FILE SCRIPT.py [script args...]   (e.g. bench/bare_gateway.py)
    python bench/count_gateway.py --tally FILE [gateway args...]
    python bench/count_gateway.py --flush FILE [gateway args...]

cProfile (the default, for `bench_calls.py`): SIGUSR1 starts profiling, SIGUSR2 stops it and writes
pstats to FILE (then FILE.done, so a reader knows it is complete); only the measured calls are in
the profile, not start-up or warm-up, so calls per request are exact and repeatable on a busy machine.

--tally (for `bench_gateway.py --count`, read by bench/counting.py): counts, in every thread, Python
function calls (a coroutine's resumptions apart: how often it is resumed depends on timing), calls
of C functions, and garbage collections per generation (with the objects they examined). On
SIGUSR1 it writes the totals so far to FILE as JSON (replacing it atomically), with a `seq` that
grows by one per snapshot. The counting slows the gateway several times over: its counts are the
point, not its times.

--flush (for `bench_gateway.py --instructions`, run under valgrind, read by bench/instructions.py):
the work a gateway defers is done on request, not on the clock (under valgrind a call takes ~50
times as long: the trace exporter's 5-second tick would post partial batches inside a counted
window, and the audit writer's 0.2 s batches would hold a few rows each). The exporter's tick is
switched off (the bench sets a long MCPGW_AUDIT_FLUSH_INTERVAL for the audit writer); on SIGUSR1
the buffered spans are exported and the queued audit events written, then FILE holds the number
of flushes so far. Caches that expire by the clock would likewise land a refill (a JWT signature
check: millions of instructions) in one window and not another: the verified-token cache's
300-second cap is lifted (the bench sets long decision and tools-list TTLs).
"""

from __future__ import annotations

import cProfile
import dis
import gc
import json
import os
import runpy
import signal
import sys
import threading
from pathlib import Path
from types import CodeType, FrameType
from typing import Any

_GENERATOR_LIKE = 0x20 | 0x80 | 0x200  # CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR


def run_gateway(argv: list[str]) -> None:
    """Run `python -m gateway ARGV`, or the script when ARGV[0] ends in .py, in this process."""
    script = argv[0] if argv and argv[0].endswith(".py") else None
    sys.argv = [script, *argv[1:]] if script else ["gateway", *argv]
    if script:
        runpy.run_path(script, run_name="__main__")
    else:
        runpy.run_module("gateway", run_name="__main__", alter_sys=True)


def profile(out: str) -> None:
    """cProfile on SIGUSR1, off and written to `out` on SIGUSR2."""
    profiler = cProfile.Profile()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        Path(out + ".done").touch()

    signal.signal(signal.SIGUSR1, lambda _sig, _frame: profiler.enable())
    signal.signal(signal.SIGUSR2, stop)


def tally(out: str) -> None:
    """Count calls and collections from now on; a JSON snapshot to `out` on SIGUSR1."""
    totals = {"calls": 0, "resumes": 0, "c_calls": 0}
    starts: dict[CodeType, int] = {}  # generator-like code -> offset of its first RESUME
    collections = [0, 0, 0]
    examined = [0, 0, 0]  # objects in the generations collected (what a collection walks)
    seq = 0

    def first_resume(code: CodeType) -> int:
        offset = next((i.offset for i in dis.get_instructions(code) if i.opname == "RESUME"), 0)
        starts[code] = offset
        return offset

    def counter(frame: FrameType, event: str, _arg: Any) -> None:
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
            sys.setprofile(counter)

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
    threading.setprofile(counter)
    sys.setprofile(counter)


def flush(out: str) -> None:
    """Exporters built from now on never tick; on SIGUSR1 they export what is buffered, then `out` is written."""
    import asyncio

    from shared.audit.emitter import AuditEmitter
    from shared.auth.authenticator import AuthConfig
    from shared.tracing import otlp

    exporters: list[otlp.Exporter] = []
    emitters: list[AuditEmitter] = []
    init, emitter_init = otlp.Exporter.__init__, AuditEmitter.__init__
    done = 0

    def patched(self: otlp.Exporter, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.interval = 1e6
        exporters.append(self)

    checked = AuthConfig.__post_init__

    def lasting(self: AuthConfig) -> None:
        checked(self)
        object.__setattr__(self, "cache_ttl", 1e6)

    def kept(self: AuditEmitter, *args: Any, **kwargs: Any) -> None:
        emitter_init(self, *args, **kwargs)
        emitters.append(self)

    async def export() -> None:
        for emitter in emitters:
            await emitter.flush()
        for exporter in exporters:
            await exporter.export_buffered()

    def exported(task: asyncio.Task[None]) -> None:
        nonlocal done
        pending.discard(task)
        done += 1
        Path(out).write_text(str(done))

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        task = asyncio.get_running_loop().create_task(export())
        pending.add(task)
        task.add_done_callback(exported)

    pending: set[asyncio.Task[None]] = set()
    otlp.Exporter.__init__ = patched  # type: ignore[method-assign]
    AuditEmitter.__init__ = kept  # type: ignore[method-assign]
    AuthConfig.__post_init__ = lasting  # type: ignore[method-assign]
    signal.signal(signal.SIGUSR1, on_signal)


def main() -> None:
    """Install the counter, then run the gateway until it exits."""
    argv = sys.argv[1:]
    if argv[0] == "--tally":
        tally(argv[1])
    elif argv[0] == "--flush":
        flush(argv[1])
    else:
        profile(argv[0])
    run_gateway(argv[2:] if argv[0] in ("--tally", "--flush") else argv[1:])


if __name__ == "__main__":
    main()
