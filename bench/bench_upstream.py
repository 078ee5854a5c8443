"""Upstream client benchmark: UpstreamPool vs the official SDK client against the same SDK backends.

Prints p50/p95 per tools/call at concurrency 1 and throughput at concurrency 16, for a modern
(2026-07-28) and a legacy-only (2025-11-25) backend, plus the SSE parser's throughput. Ratios are
taken within one run, so they hold across machines better than the absolute figures.

Run: `.venv/bin/python bench/bench_upstream.py` (`--quick` for a short run).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcp.client import Client  # noqa: E402

from gateway.credentials import CredentialStore  # noqa: E402
from gateway.registry import parse_servers  # noqa: E402
from gateway.upstream import UpstreamPool, create_session, sse  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    """The q-quantile of samples, in milliseconds."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def sequential(call, n: int) -> list[float]:  # type: ignore[no-untyped-def]
    """Latencies of n calls made one after another (after 20 warm-up calls)."""
    for _ in range(20):
        await call()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t)
    return out


async def throughput(call, n: int, concurrency: int) -> float:  # type: ignore[no-untyped-def]
    """Calls per second with `concurrency` callers sharing n calls."""
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await call()

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - t)


def spawn(kind: str) -> tuple[subprocess.Popen[str], str]:
    """Start a backend in its own process (so it does not share our GIL); return it and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.backend_server", "--kind", kind],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


async def bench_backend(kind: str, n: int) -> dict[str, tuple[float, float, float]]:
    """{client: (p50 ms, p95 ms, calls/s at concurrency 16)} for one backend kind."""
    proc, url = spawn(kind)
    servers, _ = parse_servers({"servers": {"b": {"url": url}}})
    out: dict[str, tuple[float, float, float]] = {}
    try:
        async with create_session() as session:
            pool = UpstreamPool(session, CredentialStore(session, environ={}))

            async def ours() -> None:
                await pool.call_tool(servers["b"], "echo", {"text": "hello"})

            lat = await sequential(ours, n)
            out["mcpgw UpstreamPool"] = (
                pct(lat, 0.5),
                pct(lat, 0.95),
                await throughput(ours, n, 16),
            )
        mode = "legacy" if kind == "legacy" else "auto"
        async with Client(url, mode=mode) as client:

            async def sdk() -> None:
                await client.call_tool("echo", {"text": "hello"})

            lat = await sequential(sdk, n)
            out["official SDK Client"] = (
                pct(lat, 0.5),
                pct(lat, 0.95),
                await throughput(sdk, n, 16),
            )
    finally:
        proc.terminate()
        proc.wait()
    return out


def bench_sse(events: int) -> float:
    """MB/s the SSE parser sustains on CRLF events fed in 4 KiB chunks."""
    one = b'event: message\r\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"p":1}}\r\n\r\n'
    payload = one * events
    chunks = [payload[i : i + 4096] for i in range(0, len(payload), 4096)]
    runs = []
    for _ in range(3):
        parser = sse.Parser()
        t = time.perf_counter()
        count = sum(len(parser.feed(c)) for c in chunks)
        runs.append(time.perf_counter() - t)
        assert count == events
    return len(payload) / statistics.median(runs) / 1e6


async def main() -> None:
    """Run every measurement and print a table."""
    logging.disable(
        logging.WARNING
    )  # per-request INFO lines from the SDK/httpx would swamp the table
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    args = parser.parse_args()
    n = 200 if args.quick else 2000
    print(
        f"tools/call echo, {n} calls per figure, backends: official mcp SDK on loopback (uvicorn)"
    )
    print(f"{'backend':<22}{'client':<22}{'p50 ms':>8}{'p95 ms':>8}{'calls/s @16':>13}")
    for kind, label in (("stateless-json", "2026-07-28 (json)"), ("normal", "2026-07-28 (sse)"),
                        ("legacy", "2025-11-25 only")):  # fmt: skip
        results = await bench_backend(kind, n)
        for client, (p50, p95, rate) in results.items():
            print(f"{label:<22}{client:<22}{p50:>8.2f}{p95:>8.2f}{rate:>13.0f}")
        ours, sdk = results["mcpgw UpstreamPool"], results["official SDK Client"]
        print(
            f"{'':<22}{'ratio SDK/ours':<22}{sdk[0] / ours[0]:>8.2f}{'':>8}{ours[2] / sdk[2]:>13.2f}"
        )
    print(
        f"SSE parser: {bench_sse(5_000 if args.quick else 50_000):.0f} MB/s (CRLF events, 4 KiB chunks)"
    )


if __name__ == "__main__":
    asyncio.run(main())
