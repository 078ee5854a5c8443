"""Run the PDP as a real OS process (`python -m pdp`) for multi-process and CLI tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from tests.integration.pdp_helpers import ROOT, tool_eval

PYTHON = sys.executable
MCPGW = str(Path(sys.executable).with_name("mcpgw"))


def free_port() -> str:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def clean_env(**values: str) -> dict[str, str]:
    """The test's environment without any MCPGW_/DATABASE_URL setting, plus `values`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MCPGW_") and k not in ("DATABASE_URL", "POLICY_FILE")}
    env.update(values)
    return env


@dataclass
class PdpProcess:
    """A running PDP process and its base URL."""

    proc: asyncio.subprocess.Process
    url: str
    log: Path

    async def version(self, session: aiohttp.ClientSession) -> tuple[str, bool]:
        """(policy_version, decision) for one fixed evaluation."""
        async with session.post(self.url + "/access/v1/evaluation", json=tool_eval("nobody", "s", "t")) as resp:
            body = await resp.json()
        return body["context"]["policy_version"], body["decision"]


@contextlib.asynccontextmanager
async def pdp_process(tmp: Path, dsn: str | None, name: str, **env: str) -> AsyncIterator[PdpProcess]:
    """Start `python -m pdp` on a free port; yield once /readyz answers 200; stop it after."""
    port = free_port()
    log = tmp / f"pdp-{name}.log"
    values = {"MCPGW_DATA_DIR": str(tmp), "MCPGW_LOG_FORMAT": "text", "MCPGW_AUDIT_FLUSH_INTERVAL": "0.05", **env}
    if dsn:
        values["DATABASE_URL"] = dsn
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            PYTHON, "-m", "pdp", "--host", "127.0.0.1", "--port", port,
            cwd=ROOT, env=clean_env(**values), stdout=out, stderr=out)
    running = PdpProcess(proc, f"http://127.0.0.1:{port}", log)
    try:
        await _wait_ready(running)
        yield running
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def _wait_ready(pdp: PdpProcess, within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as session:
        while loop.time() < deadline:
            if pdp.proc.returncode is not None:
                raise AssertionError(f"PDP exited with {pdp.proc.returncode}:\n{pdp.log.read_text()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(pdp.url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError(f"PDP not ready within {within} s:\n{pdp.log.read_text()}")


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run `mcpgw ARGS` without blocking the loop (the PDP under test may live in it)."""
    proc = await asyncio.create_subprocess_exec(
        MCPGW, *args, cwd=ROOT, env=env or clean_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()
