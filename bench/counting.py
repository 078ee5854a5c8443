"""`bench_gateway.py --count N`: work per call, counted in each gateway (bench/count_gateway.py --tally).

CPU time on a shared 2-core machine swings by ±10 % between cells; counts do not. Each gateway
runs under the counter; for each in turn: snapshot, N calls at concurrency 1, a short pause,
snapshot. The traced gateway's full span batches are posted inside the window (2,048 spans, one
POST per ~682 calls, so ±1 POST is ±0.2 Python calls per call at N=1,000); the 5-second tick's
remainder is left out: a window long enough to hold it also holds the gateways' own timers
(audit flushes, cache sweeps), whose work swung a gateway's count by 5 % between rounds. Printed per
call: Python function calls, coroutine resumptions, C calls, garbage collections per 1,000 calls
and the objects they walked, and the growth in allocated blocks; then each gateway's ratio to
the first ("gateway"). Two rounds, in opposite orders: the counts should agree between them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

KEYS = ("calls", "resumes", "c_calls")
SETTLE = 0.5  # seconds: the last calls' audit rows and full span batches go out inside the window


async def snapshot(pid: int, file: Path, seq: int) -> dict[str, Any]:
    """Ask the counter for its totals and wait for snapshot number `seq`."""
    os.kill(pid, signal.SIGUSR1)
    for _ in range(500):
        await asyncio.sleep(0.01)
        data = _load(file)
        if data is not None and data["seq"] == seq:
            return data
    raise RuntimeError(f"no counter snapshot {seq} from pid {pid}")


def _load(file: Path) -> dict[str, Any] | None:
    try:
        return json.loads(file.read_text())  # type: ignore[no-any-return]
    except (FileNotFoundError, ValueError):
        return None


def per_call(before: dict[str, Any], after: dict[str, Any], n: int) -> dict[str, float]:
    """Counts per call between two snapshots (GC figures per 1,000 calls)."""
    out = {k: (after[k] - before[k]) / n for k in KEYS}
    out["python"] = out["calls"] + out["resumes"]
    for g in range(3):
        out[f"gc{g}"] = (after["gc_collections"][g] - before["gc_collections"][g]) * 1000 / n
        out[f"walked{g}"] = (after["gc_examined"][g] - before["gc_examined"][g]) / n
    out["blocks"] = (after["allocated_blocks"] - before["allocated_blocks"]) / n
    return out


async def report(n: int, gateways: dict[str, tuple[int, Path]], paths: dict[str, Callable[[], Awaitable[None]]],
                 rounds: int = 2) -> None:
    """Count N calls through each gateway, `rounds` times in alternating order; print per call and ratios."""
    seqs = dict.fromkeys(gateways, 0)
    figures: dict[str, list[dict[str, float]]] = {label: [] for label in gateways}
    await asyncio.sleep(SETTLE)
    for r in range(rounds):
        order = list(gateways) if r % 2 == 0 else list(reversed(gateways))
        for label in order:
            pid, file = gateways[label]
            seqs[label] += 1
            before = await snapshot(pid, file, seqs[label])
            for _ in range(n):
                await paths[label]()
            await asyncio.sleep(SETTLE)
            seqs[label] += 1
            figures[label].append(per_call(before, await snapshot(pid, file, seqs[label]), n))
    print(f"\ncounted work per call ({n} calls at c=1 per gateway and round, {rounds} rounds; figures per round)")
    print(f"{'gateway':>16} {'py calls':>9} {'resumes':>8} {'C calls':>8} {'gc0/1k':>7} {'gc1/1k':>7} {'gc2/1k':>7}"
          f" {'walked':>7} {'+blocks':>8}")
    for label, rows in figures.items():
        for f in rows:
            walked = f["walked0"] + f["walked1"] + f["walked2"]
            print(f"{label:>16} {f['calls']:>9.1f} {f['resumes']:>8.1f} {f['c_calls']:>8.1f} {f['gc0']:>7.1f}"
                  f" {f['gc1']:>7.1f} {f['gc2']:>7.2f} {walked:>7.0f} {f['blocks']:>8.2f}")
    first = next(iter(figures))
    base = figures[first]
    for label, rows in list(figures.items())[1:]:
        ratios = {k: [b[k] / a[k] for a, b in zip(base, rows, strict=True) if a[k]]
                  for k in ("calls", "python", "c_calls")}
        print(f"{label}/{first}: Python calls " + " ".join(f"{x:.3f}" for x in ratios["calls"])
              + ", with resumptions " + " ".join(f"{x:.3f}" for x in ratios["python"])
              + ", C calls " + " ".join(f"{x:.3f}" for x in ratios["c_calls"])
              + f"; extra Python calls per call {statistics.median(b['calls'] - a['calls'] for a, b in zip(base, rows, strict=True)):+.1f}")
