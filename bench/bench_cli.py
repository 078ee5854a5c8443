"""Client CLI figures: process start-up, and servers-file edits (splice + validate) vs a ruamel round trip.

Run: .venv/bin/python bench/bench_cli.py [--quick]
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcpgw.client import servers_file  # noqa: E402
from mcpgw.client.register import validate  # noqa: E402


def big_file(n: int) -> str:
    """A servers file with n commented entries."""
    parts = ["# generated\nservers:\n"]
    for i in range(n):
        parts.append(
            f"  # backend {i}\n  srv-{i:04d}:\n    url: https://mcp{i}.example.com/mcp   # endpoint\n"
            f"    timeout: 30\n    tags: [\"t{i % 7}\"]\n    auth:\n      method: bearer\n"
            f"      credential_ref: env://TOKEN_{i}\n"
        )
    return "".join(parts)


def timed(fn, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    runs = 5 if args.quick else 20

    start = timed(
        lambda: subprocess.run([sys.executable, "-m", "mcpgw.cli", "list-servers", "--help"], cwd=ROOT,
                               capture_output=True, check=True),
        runs,
    )
    print(f"CLI process start (list-servers --help): p50 {statistics.median(start):.0f} ms over {runs} runs")

    for n in (10, 500):
        text = big_file(n)
        entry = {"url": "https://new.example.com/mcp", "type": "http", "enabled": True, "tags": ["x"]}

        def splice(text: str = text, entry: dict = entry) -> None:
            new = servers_file.add_entry(text, "new-one", entry)
            servers_file.check(text, new, "new-one", validate, Path("s.yaml"))

        def round_trip(text: str = text, entry: dict = entry) -> None:
            rt = YAML()
            doc = rt.load(text)
            doc["servers"]["new-one"] = entry
            rt.dump(doc, io.StringIO())

        a = statistics.median(timed(splice, runs))
        b = statistics.median(timed(round_trip, runs))
        print(f"{n:4d} entries: splice+validate p50 {a:.1f} ms; ruamel load+dump only p50 {b:.1f} ms; ratio {a / b:.2f}")


if __name__ == "__main__":
    main()
