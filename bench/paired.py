"""`bench_gateway.py --pairs K`: one gateway's CPU per call against another's, in K short paired cells.

On a shared 2-core machine a process's CPU per call drifts by ±10 % within a minute (the other
jobs take the caches and the cores); two processes measured back to back drift together. So each
pair runs the two gateways one short cell after the other (alternating which goes first, ABBA),
and what is reported is the distribution of the K per-pair ratios: median, quartiles and a ~95 %
confidence interval of the median (distribution-free, from order statistics). CPU time is the
scheduler's per-thread nanosecond count (/proc/PID/task/*/schedstat), not /proc/PID/stat's
10 ms ticks, which alone would blur a 300-call cell by several per cent.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

Measure = Callable[[Any, int, int], Awaitable[tuple[float, float, float]]]


def cpu_ns(pid: int) -> int:
    """CPU nanoseconds the threads of process `pid` alive now have run (Linux schedstat)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
    return total


def median_interval(values: list[float]) -> tuple[float, float]:
    """A ~95 % confidence interval of the median of `values` (order statistics, no distribution assumed)."""
    ordered = sorted(values)
    n = len(ordered)
    half = 0.98 * math.sqrt(n)
    lo, hi = max(0, math.floor(n / 2 - half)), min(n - 1, math.ceil(n / 2 + half) - 1)
    return ordered[lo], ordered[hi]


def summary(ratios: list[float]) -> str:
    """Median, quartiles and the median's interval of per-pair ratios, as +x.x % figures."""
    q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
    lo, hi = median_interval(ratios)

    def pct(x: float) -> str:
        return f"{x - 1:+.1%}"

    return (f"median {pct(statistics.median(ratios))} (quartiles {pct(q1)} … {pct(q3)}; "
            f"95 % interval of the median {pct(lo)} … {pct(hi)}; {len(ratios)} pairs)")


def couples(pids: dict[str, int]) -> list[tuple[str, str]]:
    """The comparisons a run can make: tracing's cost, the baseline's, and traced this vs traced baseline."""
    wanted = [("gateway", "traced"), ("baseline", "traced-baseline"), ("traced-baseline", "traced"),
              ("baseline", "gateway")]
    found = [(a, b) for a, b in wanted if a in pids and b in pids]
    return found or [(a, b) for a, b in zip(list(pids), list(pids)[1:], strict=False)]


async def report(measure: Measure, paths: dict[str, Callable[[], Awaitable[None]]], pids: dict[str, int],
                 couples: list[tuple[str, str]], pairs: int, calls: int) -> None:
    """For each (base, other) couple: `pairs` pairs of cells at c=1 and c=50; print the ratio figures."""
    print(f"\npaired cells: {pairs} pairs per couple and concurrency, {calls} calls per cell (c=50: twice as many);"
          " CPU per call other/base from schedstat")
    for base, other in couples:
        for concurrency in (1, 50):
            n = calls * (2 if concurrency > 1 else 1)
            ratios: list[float] = []
            per_call: dict[str, list[float]] = {base: [], other: []}
            for i in range(pairs):
                used: dict[str, float] = {}
                for label in ((base, other) if i % 2 == 0 else (other, base)):
                    before = cpu_ns(pids[label])
                    await measure(paths[label], n, concurrency)
                    used[label] = (cpu_ns(pids[label]) - before) / n / 1000
                    per_call[label].append(used[label])
                ratios.append(used[other] / used[base])
            print(f"  {other}/{base} c={concurrency}: {summary(ratios)}; µs per call {base} "
                  f"{statistics.median(per_call[base]):.0f}, {other} {statistics.median(per_call[other]):.0f}",
                  flush=True)
