"""`make run`'s stack (`python -m shared.devstack`): starts, answers the printed calls, stops clean.

Runs the real thing on free ports with its data in a temporary folder: embedded Postgres, dev
issuer, demo backend, PDP and gateway. Ctrl-C is sent the way a terminal sends it (SIGINT to the
foreground process group); afterwards no child process and no Postgres may be left running.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def children_of(pid: int) -> set[int]:
    """Every live descendant of `pid` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def tail(log: Path) -> str:
    """What the stack printed, for an assertion message (the first error usually comes first)."""
    text = log.read_text()
    return text if len(text) < 8000 else text[:4000] + "\n...\n" + text[-4000:]


async def call_as_the_banner_says(base: str, token: str) -> None:
    """The calls the banner prints, and one without the token."""
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http:
        async with http.get(base + "/mcp/servers") as resp:
            assert resp.status == 200 and (await resp.json())["servers"][0]["name"] == "demo"
        async with http.get(base + "/mcp/list-tools", params={"mcp_server": "demo"}) as resp:
            assert "echo" in {t["name"] for t in (await resp.json())["tools"]}
        body = {"tool_name": "echo", "parameters": {"text": "hi"}}
        async with http.post(base + "/mcp/invoke", params={"mcp_server": "demo"}, json=body) as resp:
            assert resp.status == 200
            assert (await resp.json())["result"]["content"][0]["text"] == "hi"
    async with aiohttp.ClientSession() as anon, anon.get(base + "/mcp/servers") as resp:
        assert resp.status == 401


@pytest.fixture
def data_dir():
    """A data folder outside pytest's tmp root: pytest resets that root to mode 0700 whenever any
    pytest starts, and the embedded server (running as its own user when we are root) then loses
    access to its PGDATA mid-initdb."""
    path = Path(tempfile.mkdtemp(prefix="mcpgw-devstack-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_make_run_stack_serves_and_stops_clean(tmp_path, data_dir):
    gw, pdp, backend, issuer = free_ports(4)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCPGW_") and k != "DATABASE_URL"}
    env.update(MCPGW_DATA_DIR=str(data_dir), MCPGW_DEV_GATEWAY_PORT=str(gw),
               MCPGW_DEV_PDP_PORT=str(pdp), MCPGW_DEV_BACKEND_PORT=str(backend),
               MCPGW_DEV_ISSUER_PORT=str(issuer), PYTHONPATH=str(ROOT))
    log = tmp_path / "out.log"
    spawned: set[int] = set()
    postgres_pid = 0
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "shared.devstack"], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "export MCPGW_TOKEN=" not in log.read_text():
            assert proc.poll() is None, tail(log)
            assert time.monotonic() < deadline, tail(log)
            time.sleep(0.2)
        text = log.read_text()
        token = re.search(r"export MCPGW_TOKEN=(\S+)", text).group(1)
        assert f"http://127.0.0.1:{gw}/mcp" in text and str(data_dir / "postgres") in text
        pgdata = data_dir / "postgres"
        postgres_pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        spawned = children_of(proc.pid)
        assert len(spawned) >= 3 and alive(postgres_pid)

        asyncio.run(call_as_the_banner_says(f"http://127.0.0.1:{gw}", token))

        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0, tail(log)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in (*spawned, postgres_pid)):
            assert time.monotonic() < deadline, [p for p in (*spawned, postgres_pid) if alive(p)]
            time.sleep(0.1)
        assert not (pgdata / "postmaster.pid").exists()
    finally:
        if proc.poll() is None:  # a failed assertion above: still let the stack clean up
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pid in spawned:  # never leave a broken stack's children behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if postgres_pid and alive(postgres_pid):
            os.kill(postgres_pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown
