"""`bench_gateway.py --instructions N`: instructions executed per proxied call, counted by valgrind.

CPU time on the shared 2-core machine moves by more than tracing costs, and Python call counts
weigh a dict lookup like an HTTP parse. Instructions are deterministic: each gateway runs under
`valgrind --tool=callgrind --instr-atstart=no` (bench/count_gateway.py --flush as its launcher), so
start-up and the load generator's warm-up run uninstrumented. For each gateway and concurrency in
turn (`callgrind_control`): instrumentation on; W calls (the simulated caches warm, the
translations made); deferred work done (count_gateway.py --flush: spans exported, audit events
written); counters zeroed; **N calls**, a settle, dump ("calls"); deferred work done, dump
("deferred"); instrumentation off. Under valgrind a call takes ~50 times as long, so work on the
clock would be counted by wall time: the exporter's tick is off and the audit writer's linger
long (MCPGW_AUDIT_FLUSH_INTERVAL), and both run in the "deferred" part on request. The traced
gateway's spans of the N calls are encoded and POSTed there in one POST when they fit one batch
(N ≤ 682 at three spans per call; batches are 2,048 spans): the exporter's work per call as under
steady load, where every POST carries a full batch; the N audit rows go in one COPY (at 1,000
calls/s the writer's 0.2 s batches hold ~200). PYTHONHASHSEED is fixed so identical processes
probe their dicts and sets alike.

Printed per call: Ir (instructions), and with `--cache-sim` the simulated D1 and LL read/write
misses (valgrind's model: D1 as the host's, LL 8 MB); ratios to the first gateway; the C functions
whose self cost differs most between a couple (callgrind_annotate; Python functions are inside
`_PyEval_EvalFrameDefault` on 3.11). A second untraced gateway (`--variant twin:`) is the A/A check.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

Call = Callable[[], Awaitable[None]]
WARM = 40  # instrumented calls before the window: simulated caches warm, code translated
SETTLE = 1.0  # s after the last call (under valgrind the audit writer's 0.2 s batch takes longer)
EVENTS = ("Ir", "D1mr", "D1mw", "DLmr", "DLmw")
_ANNOTATED = re.compile(r"^\s*([\d,]+)\s+(?:\(\s*[\d.]+%\)\s+)?(\S.*?)(?:\s+\[.*\])?\s*$")


def valgrind(out_dir: Path, cache_sim: bool) -> list[str]:
    """The valgrind command a gateway runs under; dumps go to out_dir/cg.PID.K."""
    cache = ["--cache-sim=yes", "--LL=8388608,16,64"] if cache_sim else ["--cache-sim=no"]
    return ["valgrind", "--tool=callgrind", "--instr-atstart=no", *cache, "--dump-instr=no",
            f"--callgrind-out-file={out_dir}/cg.%p", "--log-file=" + str(out_dir / "valgrind.%p.log")]


def totals(text: str) -> dict[str, int]:
    """The event totals of a callgrind dump (`events:` and `totals:`/`summary:` lines)."""
    names: list[str] = []
    values: list[int] = []
    for line in text.splitlines():
        if line.startswith("events:"):
            names = line.split()[1:]
        elif line.startswith(("totals:", "summary:")):
            values = [int(v) for v in line.split()[1:]]
    if not names or len(values) != len(names):
        raise ValueError("not a complete callgrind dump (no events/totals lines)")
    return dict(zip(names, values, strict=True))


def functions(annotated: str) -> dict[str, int]:
    """Cost per function from `callgrind_annotate --show=Ir` output (function name, object dropped)."""
    costs: dict[str, int] = {}
    body = annotated.partition("file:function")[2]
    for line in body.splitlines():
        match = _ANNOTATED.match(line)
        if match and not line.startswith("-"):
            name = match.group(2).rpartition(":")[2]
            costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def annotate(dump: Path, inclusive: bool) -> dict[str, int]:
    """Per-function Ir of one dump (self, or inclusive)."""
    out = subprocess.run(["callgrind_annotate", "--show=Ir", "--threshold=100", f"--inclusive={'yes' if inclusive else 'no'}",
                          str(dump)], capture_output=True, text=True, check=True).stdout
    return functions(out)


def control(pid: int, *flags: str) -> None:
    """Run callgrind_control on a gateway (instrumentation on/off, zero, dump)."""
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Gateway:
    """One gateway under callgrind: its pid, dump folder and flush-marker file."""

    def __init__(self, pid: int, out_dir: Path, marker: Path) -> None:
        self.pid, self.out_dir, self.marker = pid, out_dir, marker
        self.flushes = 0

    def dumps(self) -> list[Path]:
        """The dumps written so far, in order."""
        parts = (p.name.split(".") for p in self.out_dir.glob(f"cg.{self.pid}.*"))
        numbers = sorted(int(x[2]) for x in parts if len(x) == 3 and x[2].isdigit())
        return [self.out_dir / f"cg.{self.pid}.{k}" for k in numbers]

    async def dump(self) -> Path:
        """Dump the counters since the last zero or dump (and zero them); the new file."""
        before = len(self.dumps())
        await asyncio.to_thread(control, self.pid, "--dump")
        for _ in range(600):
            files = self.dumps()
            if len(files) > before and "totals:" in files[-1].read_text()[-4096:]:
                return files[-1]
            await asyncio.sleep(0.05)
        raise RuntimeError(f"no callgrind dump from pid {self.pid}")

    async def flush(self) -> None:
        """Ask the launcher to export the buffered spans; wait for its marker."""
        self.flushes += 1
        os.kill(self.pid, signal.SIGUSR1)
        for _ in range(1200):
            await asyncio.sleep(0.05)
            if self.marker.exists() and self.marker.read_text() == str(self.flushes):
                return
        raise RuntimeError(f"no flush marker {self.flushes} from pid {self.pid}")


async def drive(call: Call, total: int, concurrency: int) -> None:
    """`total` calls spread over `concurrency` callers (one shared iterator hands out the turns)."""
    turns = iter(range(total))

    async def worker() -> None:
        for _ in turns:
            await call()

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def refresh(call: Call, concurrency: int) -> None:
    """Calls that may fail: a gateway idle through the others' windows holds pooled backend
    connections the backend closed (uvicorn: after 5 s), and tools/call is not resent (502)."""
    async def tolerant() -> None:
        with contextlib.suppress(RuntimeError):
            await call()

    await drive(tolerant, 3 * concurrency, concurrency)


async def window(gw: Gateway, call: Call, n: int, concurrency: int) -> tuple[Path, Path]:
    """One counted window: the dumps of the N calls and of their deferred work."""
    await refresh(call, concurrency)
    await asyncio.to_thread(control, gw.pid, "--instr=on")
    await drive(call, WARM, concurrency)
    await gw.flush()
    await asyncio.to_thread(control, gw.pid, "--zero")
    await drive(call, n, concurrency)
    await asyncio.sleep(SETTLE)
    calls = await gw.dump()
    await gw.flush()
    flushed = await gw.dump()
    await asyncio.to_thread(control, gw.pid, "--instr=off")
    return calls, flushed


def per_call(dump: Path, n: int) -> dict[str, float]:
    """Events per call in one dump."""
    return {k: v / n for k, v in totals(dump.read_text()).items()}


def row(label: str, c: int, calls: dict[str, float], flushed: dict[str, float]) -> str:
    """One printed line: calls part, deferred part, total, and the misses when simulated."""
    ir = calls["Ir"] + flushed["Ir"]
    line = f"{label:>10} {c:>3} {calls['Ir']:>12,.0f} {flushed['Ir']:>10,.0f} {ir:>12,.0f}"
    if "D1mr" in calls:
        line += "".join(f" {calls[k] + flushed[k]:>8,.0f}" for k in EVENTS[1:])
    return line


def differences(base: tuple[Path, Path], other: tuple[Path, Path], n: int, top: int = 12) -> list[str]:
    """The C functions whose self Ir per call differs most (other - base; calls and deferred parts summed)."""
    def costs(dumps: tuple[Path, Path]) -> dict[str, int]:
        merged: dict[str, int] = {}
        for dump in dumps:
            for name, cost in annotate(dump, inclusive=False).items():
                merged[name] = merged.get(name, 0) + cost
        return merged

    a, b = costs(base), costs(other)
    deltas = sorted(((b.get(k, 0) - a.get(k, 0)) / n, k) for k in a.keys() | b.keys())
    biggest = sorted(deltas, key=lambda d: -abs(d[0]))[:top]
    return [f"    {d:>+10,.0f}  {name}" for d, name in biggest]


async def report(n: int, gateways: dict[str, Gateway], paths: dict[str, Call], concurrencies: tuple[int, ...] = (1, 25),
                 couples: list[tuple[str, str]] | None = None) -> None:
    """Count N calls through each gateway at each concurrency; print per call, ratios and where they differ."""
    dumps: dict[tuple[str, int], tuple[Path, Path]] = {}
    for c in concurrencies:
        for label, gw in gateways.items():
            dumps[(label, c)] = calls, deferred = await window(gw, paths[label], n, c)
            print(f"  counted {label} c={c}: Ir per call {per_call(calls, n)['Ir']:,.0f} + deferred "
                  f"{per_call(deferred, n)['Ir']:,.0f}", flush=True)
    head = f"{'gateway':>10} {'c':>3} {'Ir calls':>12} {'deferred':>10} {'Ir total':>12}"
    sim = "D1mr" in totals(next(iter(dumps.values()))[0].read_text())
    print(f"\ninstructions per proxied call (callgrind; {n} calls per window after {WARM} warm ones)")
    print(head + ("".join(f" {k:>8}" for k in EVENTS[1:]) if sim else ""))
    figures: dict[tuple[str, int], dict[str, float]] = {}
    for (label, c), (calls, flushed) in dumps.items():
        a, b = per_call(calls, n), per_call(flushed, n)
        figures[(label, c)] = {k: a[k] + b[k] for k in a}
        print(row(label, c, a, b))
    first = next(iter(gateways))
    for label in list(gateways)[1:]:
        ratios = []
        for c in concurrencies:
            base, other = figures[(first, c)], figures[(label, c)]
            text = f"c={c} Ir {other['Ir'] / base['Ir'] - 1:+.2%}"
            if sim:
                text += "".join(f", {k} {other[k] / base[k] - 1:+.1%}" for k in ("D1mr", "D1mw") if base[k])
            ratios.append(text)
        print(f"{label}/{first}: " + "; ".join(ratios))
    for base_label, other_label in couples or []:
        if base_label in gateways and other_label in gateways:
            for c in concurrencies:
                print(f"\nself Ir per call, {other_label} - {base_label}, c={c}, largest differences:")
                print("\n".join(differences(dumps[(base_label, c)], dumps[(other_label, c)], n)))
