"""Run `python -m gateway ARGS` (or a script) with cProfile switched on and off by signals.

    python bench/count_gateway.py FILE [gateway args...]
    python bench/count_gateway.py FILE SCRIPT.py [script args...]   (e.g. bench/bare_gateway.py)

SIGUSR1 starts profiling, SIGUSR2 stops it and writes pstats to FILE (then FILE.done, so a reader
knows it is complete). Used by `bench_calls.py`: only the measured calls are in the profile, not
start-up or warm-up, so calls per request are exact and repeatable on a busy machine.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from pathlib import Path
from types import FrameType


def run_gateway(argv: list[str]) -> None:
    """Run `python -m gateway ARGV`, or the script when ARGV[0] ends in .py, in this process."""
    script = argv[0] if argv and argv[0].endswith(".py") else None
    sys.argv = [script, *argv[1:]] if script else ["gateway", *argv]
    if script:
        runpy.run_path(script, run_name="__main__")
    else:
        runpy.run_module("gateway", run_name="__main__", alter_sys=True)


def main() -> None:
    """Install the signal handlers, then run the gateway until it exits."""
    out = sys.argv[1]
    profiler = cProfile.Profile()

    def start(_sig: int, _frame: FrameType | None) -> None:
        profiler.enable()

    def stop(_sig: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        Path(out + ".done").touch()

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    run_gateway(sys.argv[2:])


if __name__ == "__main__":
    main()
