"""Run `python -m gateway ARGS` under yappi's CPU clock; write pstats to FILE at exit.

    python bench/yappi_gateway.py FILE [gateway args...]
    python bench/yappi_gateway.py FILE SCRIPT.py [script args...]   (e.g. bench/bare_gateway.py)

Used by `bench_gateway.py --yappi FILE`: unlike cProfile's wall clock, the CPU clock does not
charge a function for the time its thread was preempted (the machine is shared), and yappi
attributes coroutine time to the coroutine across awaits.
"""

from __future__ import annotations

import atexit
import sys

import yappi
from count_gateway import run_gateway  # bench/ is on the path when this runs as a script


def main() -> None:
    """Profile the gateway until it exits."""
    out = sys.argv[1]
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)

    def save() -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    atexit.register(save)
    run_gateway(sys.argv[2:])


if __name__ == "__main__":
    main()
