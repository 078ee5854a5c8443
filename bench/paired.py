"""`bench_gateway.py --pairs K`: one gateway's CPU per call against another's, in K side-by-side cells.

On a shared 2-core machine a process's CPU per call drifts by ±10–20 % within a minute (other
jobs take the caches and the cores). Cells run back to back did not cancel it: the same code
against itself came out +15 % in one such run. So each cell loads both gateways at the same time
(the same number of calls each, as many callers on each), and what is reported is the
distribution of the K per-cell ratios: median, quartiles and a ~95 % confidence interval of the
median (distribution-free, from order statistics). A couple of identical gateways (`baseline`
= this checkout, or `--variant twin:`) shows the noise floor. CPU time is the scheduler's
per-thread nanosecond count (/proc/PID/task/*/schedstat), not /proc/PID/stat's 10 ms ticks.
"""

from __future__ import annotations

import asyncio
import math
import os
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path

Call = Callable[[], Awaitable[None]]


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
              ("baseline", "gateway"), ("gateway", "twin")]  # the last two: same code, the noise floor
    found = [(a, b) for a, b in wanted if a in pids and b in pids]
    return found or [(a, b) for a, b in zip(list(pids), list(pids)[1:], strict=False)]


async def side_by_side(first: Call, second: Call, calls: int, workers: int) -> None:
    """`calls` calls through each of two gateways at once, `workers` concurrent callers each."""

    async def worker(call: Call, count: int) -> None:
        for _ in range(count):
            await call()

    share = calls // workers
    await asyncio.gather(*(worker(first, share) for _ in range(workers)), *(worker(second, share) for _ in range(workers)))


async def report(paths: dict[str, Call], pids: dict[str, int], couples: list[tuple[str, str]], pairs: int,
                 calls: int) -> None:
    """For each (base, other) couple: `pairs` side-by-side cells at 1 and 25 callers per gateway; the ratios."""
    print(f"\nside-by-side cells: {pairs} per couple and concurrency, {calls} calls per gateway and cell "
          "(25 callers each: twice as many); CPU per call other/base from schedstat")
    for base, other in couples:
        for workers in (1, 25):
            n = calls * (2 if workers > 1 else 1)
            ratios: list[float] = []
            per_call: dict[str, list[float]] = {base: [], other: []}
            for i in range(pairs):
                labels = (base, other) if i % 2 == 0 else (other, base)  # who is first to get a worker
                before = {label: cpu_ns(pids[label]) for label in labels}
                await side_by_side(paths[labels[0]], paths[labels[1]], n, workers)
                for label in labels:
                    per_call[label].append((cpu_ns(pids[label]) - before[label]) / n / 1000)
                ratios.append(per_call[other][-1] / per_call[base][-1])
            print(f"  {other}/{base} {workers} caller(s) each: {summary(ratios)}; µs per call {base} "
                  f"{statistics.median(per_call[base]):.0f}, {other} {statistics.median(per_call[other]):.0f}",
                  flush=True)
