"""Run `python -m gateway ARGS` under yappi's CPU clock; write pstats to FILE at exit.

    python bench/yappi_gateway.py FILE [gateway args...]
    python bench/yappi_gateway.py FILE SCRIPT.py [script args...]   (e.g. bench/bare_gateway.py)

Used by `bench_gateway.py --yappi FILE`: unlike cProfile's wall clock, the CPU clock does not
charge a function for the time its thread was preempted (the machine is shared), and yappi
attributes coroutine time to the coroutine across awaits.
"""

from __future__ import annotations

import atexit
import runpy
import sys

import yappi


def main() -> None:
    """Profile the gateway until it exits."""
    out = sys.argv[1]
    script = sys.argv[2] if len(sys.argv) > 2 and sys.argv[2].endswith(".py") else None
    sys.argv = [script, *sys.argv[3:]] if script else ["gateway", *sys.argv[2:]]
    yappi.set_clock_type("cpu")
    yappi.start(builtins=True)

    def save() -> None:
        yappi.stop()
        yappi.get_func_stats().save(out, type="pstat")

    atexit.register(save)
    if script:
        runpy.run_path(script, run_name="__main__")
    else:
        runpy.run_module("gateway", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
