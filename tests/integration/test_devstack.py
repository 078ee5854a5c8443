"""`make run`'s stack (`python -m mcpgw.devstack`): starts, answers the printed calls, stops clean.

Runs the real thing on free ports, in a scratch working directory (its own `.env`, policy file
and servers file) with its data in a temporary folder: embedded Postgres, dev issuer, demo
backend, PDP and gateway. Ctrl-C is sent the way a terminal sends it (SIGINT to the foreground
process group); afterwards no child process and no Postgres may be left running, even when
`mcpgw audit` commands sharing the embedded Postgres were killed by SIGTERM and SIGKILL first.
Configuration problems (port in use, bad files, authentication switched off by `.env`) must
stop it with exit 2 and a line naming the problem, before anything is started.
"""

from __future__ import annotations

import asyncio
import html
import json
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
import yaml

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



class Stack:
    """One `python -m mcpgw.devstack` run in a scratch directory."""

    def __init__(self, cwd: Path, data_dir: Path) -> None:
        self.cwd, self.data_dir = cwd, data_dir
        self.ports = dict(zip(("gateway", "pdp", "backend", "issuer"), free_ports(4), strict=True))
        self.policy = cwd / "policy.yaml"
        self.policy.write_text((ROOT / "policies" / "policy.yaml").read_text())
        self.servers = cwd / "mcp_servers.yaml"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MCPGW_") and k != "DATABASE_URL"}
        self.env.update(MCPGW_DATA_DIR=str(data_dir), MCPGW_PDP_POLICY_FILE=str(self.policy),
                        PYTHONPATH=str(ROOT), MCPGW_PDP_WATCH_INTERVAL="0.1",
                        **{f"MCPGW_DEV_{k.upper()}_PORT": str(v) for k, v in self.ports.items()})
        self.log = cwd / "out.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawned: set[int] = set()
        self.postgres_pid = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        with self.log.open("w") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "mcpgw.devstack", *args], cwd=self.cwd,
                                         env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self.proc

    def wait_banner(self) -> str:
        assert self.proc is not None
        deadline = time.monotonic() + 120
        while "mcpgw is running" not in self.log.read_text() or "Try:" not in self.log.read_text():
            assert self.proc.poll() is None, tail(self.log)
            assert time.monotonic() < deadline, tail(self.log)
            time.sleep(0.2)
        self.postgres_pid = int((self.data_dir / "postgres" / "postmaster.pid").read_text().split()[0])
        self.spawned = children_of(self.proc.pid)
        assert len(self.spawned) >= 3 and alive(self.postgres_pid)
        return self.log.read_text()

    def mcpgw(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mcpgw.cli", *args], cwd=self.cwd, capture_output=True,
                              text=True, env={**self.env, **env}, timeout=60)

    def interrupt_and_check_clean(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGINT)
        assert self.proc.wait(60) == 0, tail(self.log)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in (*self.spawned, self.postgres_pid)):
            assert time.monotonic() < deadline, [p for p in (*self.spawned, self.postgres_pid) if alive(p)]
            time.sleep(0.1)
        assert not (self.data_dir / "postgres" / "postmaster.pid").exists()

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:  # a failed assertion: still clean up
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for pid in self.spawned:  # never leave a broken stack's children behind
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if self.postgres_pid and alive(self.postgres_pid):
            os.kill(self.postgres_pid, signal.SIGQUIT)  # PostgreSQL's immediate shutdown


@pytest.fixture
def data_dir():
    """A data folder outside pytest's tmp root: pytest resets that root to mode 0700 whenever any
    pytest starts, and the embedded server (running as its own user when we are root) then loses
    access to its PGDATA mid-initdb."""
    path = Path(tempfile.mkdtemp(prefix="mcpgw-devstack-"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def stack(tmp_path, data_dir):
    s = Stack(tmp_path, data_dir)
    yield s
    s.cleanup()


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


async def invoke(base: str, token: str | None, tool: str, **params) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as http, http.post(
            base + "/mcp/invoke", params={"mcp_server": "demo"},
            json={"tool_name": tool, "parameters": params}) as resp:
        return resp.status, await resp.json()


async def server_names(base: str, token: str) -> set[str]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as http, \
            http.get(base + "/mcp/servers") as resp:
        return {s["name"] for s in (await resp.json())["servers"]}


def until(check, within: float = 30.0):
    """Poll a check (a callable returning truthy) until it holds."""
    deadline = time.monotonic() + within
    while not (value := check()):
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)
    return value


async def console_sign_in(console: str, user: str) -> tuple[str, str]:
    """Sign in to the PDP console through the dev issuer's login page, as a person would:
    (final URL, page text) after choosing `user` on the issuer's form."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(console) as resp:  # → the issuer's login page (code + PKCE request)
            page, at = await resp.text(), resp.url
        assert at.path.endswith("/protocol/openid-connect/auth"), at
        hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))
        assert hidden["code_challenge_method"] == "S256" and hidden["state"] and hidden["nonce"]
        form = {k: html.unescape(v) for k, v in hidden.items()}
        async with http.post(at.with_query(None), data={**form, "user": user}) as resp:
            return str(resp.url), await resp.text()


def handle_pids(data_dir: Path) -> list[int]:
    try:
        return json.loads((data_dir / "postgres" / ".handle_pids.json").read_text())
    except (OSError, ValueError):
        return []


def test_make_run_stack_serves_tells_the_truth_and_stops_clean(stack):
    stack.start()
    text = stack.wait_banner()
    token = re.search(r"export MCPGW_TOKEN=(\S+)", text).group(1)
    assert f"{stack.base}/mcp" in text and str(stack.data_dir / "postgres") in text
    assert f"policy    {stack.policy} - followed" in text and str(stack.servers) in text
    assert "(MCPGW_GATEWAY_LEEWAY), so 401 from 90 s on" in text  # temp's 60 s token + the gateway's 30 s leeway
    assert "policy change announced" not in text  # a start is not a policy change
    config = re.search(r"export MCPGW_CONFIG=(\S+)", text).group(1)
    asyncio.run(call_as_the_banner_says(stack.base, token))

    # The console the banner names: an editor signs in through the dev issuer (code + PKCE).
    console = re.search(r"console   (\S+)", text).group(1)
    url, page = asyncio.run(console_sign_in(console, "editor"))
    assert url == console and "Overview" in page and "editor" in page, url

    # Several users: bob's delete_records is denied by the shipped policy, alice's is not.
    got = stack.mcpgw("token", "--user", "bob", MCPGW_CONFIG=config)
    assert got.returncode == 0, got.stderr
    bob = got.stdout.strip()
    status, body = asyncio.run(invoke(stack.base, bob, "delete_records", table="t"))
    assert status == 403 and "Agents may not delete records" in body["error"]["message"], body
    assert asyncio.run(invoke(stack.base, bob, "echo", text="x"))[0] == 200
    assert asyncio.run(invoke(stack.base, token, "delete_records", table="t"))[0] == 200

    # A policy edit takes effect as a new version (v2), without a restart.
    policy = yaml.safe_load(stack.policy.read_text())
    policy["rules"].append({"name": "No echo today", "condition": {"tool_name": "echo"}, "action": "deny",
                            "priority": 500})
    stack.policy.write_text(yaml.safe_dump(policy, sort_keys=False))
    status, body = until(lambda: (r := asyncio.run(invoke(stack.base, token, "echo", text="x")))[0] == 403 and r)
    assert "No echo today" in body["error"]["message"] and "'policy_version': 'v2'" in str(body), body

    # register-mcp edits the file the running gateway watches (its default is that file too).
    # With the banner's MCPGW_CONFIG it asks this stack's gateway whether it took the file.
    got = stack.mcpgw("register-mcp", "second", f"http://127.0.0.1:{stack.ports['backend']}/mcp", MCPGW_CONFIG=config)
    assert got.returncode == 0 and str(stack.servers.name) in got.stderr, got.stderr
    assert f"mcpgw: note: the gateway at {stack.base} loaded {stack.servers}" in got.stderr, got.stderr
    until(lambda: "second" in asyncio.run(server_names(stack.base, token)))

    # `mcpgw audit` commands share the embedded Postgres; killed ones must not keep it alive.
    for sig in (signal.SIGTERM, signal.SIGKILL):
        follower = subprocess.Popen([sys.executable, "-m", "mcpgw.cli", "audit", "tail", "-f", "-n", "1"],
                                    cwd=stack.cwd, env=stack.env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        until(lambda f=follower: f.pid in handle_pids(stack.data_dir))
        follower.send_signal(sig)
        follower.wait(30)
    stack.interrupt_and_check_clean()

    # Registrations survive a restart: the servers file is not regenerated.
    assert "second" in yaml.safe_load(stack.servers.read_text())["servers"]


def test_auth_off_is_refused_unless_asked_and_then_impossible_to_miss(stack):
    (stack.cwd / ".env").write_text("MCPGW_GATEWAY_NO_AUTH=true\n")
    proc = stack.start()
    assert proc.wait(60) == 2
    out = stack.log.read_text()
    assert "MCPGW_GATEWAY_NO_AUTH=true in .env" in out and "--no-auth" in out, out
    assert not (stack.data_dir / "postgres").exists()  # nothing was started

    stack.start("--no-auth")
    text = stack.wait_banner()
    assert "AUTHENTICATION IS OFF" in text and "Authorization" not in text
    assert "export MCPGW_TOKEN=" not in text and "token below" not in text  # none is printed: none is promised

    async def health() -> dict:
        async with aiohttp.ClientSession() as http, http.get(stack.base + "/health") as resp:
            return await resp.json()

    assert asyncio.run(health())["auth_enabled"] is False
    # The dev subject has a role the shipped policy knows: allowed here, denied there.
    assert asyncio.run(invoke(stack.base, None, "echo", text="x"))[0] == 200
    assert asyncio.run(invoke(stack.base, None, "delete_records", table="t"))[0] == 403
    stack.interrupt_and_check_clean()


def test_port_in_use_is_one_line_and_exit_2(stack):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", stack.ports["gateway"]))
        busy.listen()
        proc = stack.start()
        assert proc.wait(60) == 2
    out = stack.log.read_text().strip()
    assert out == (f"mcpgw: error: port {stack.ports['gateway']} (gateway) is in use; "
                   "choose another with MCPGW_DEV_GATEWAY_PORT=PORT"), out
    assert not (stack.data_dir / "postgres").exists()


def test_configuration_errors_name_file_and_line_before_anything_starts(stack):
    stack.servers.write_text("servers:\n  demo:\n    url: http://127.0.0.1:1/mcp\n    tipe: http\n")
    stack.policy.write_text(stack.policy.read_text().replace("default_policy: deny", "default_policy: maybe"))
    stack.env["MCPGW_GATEWAY_NO_AUHT"] = "true"
    proc = stack.start()
    assert proc.wait(60) == 2
    out = stack.log.read_text()
    assert "mcp_servers.yaml:4: servers.demo.tipe: unknown key (allowed: auth," in out, out
    assert f"{stack.policy}:" in out and "default_policy" in out, out
    assert "MCPGW_GATEWAY_NO_AUHT: unknown variable (did you mean MCPGW_GATEWAY_NO_AUTH?)" in out, out
    assert "Traceback" not in out and "unexpected error" not in out
    assert not (stack.data_dir / "postgres").exists()


def test_unresolvable_credential_reference_stops_make_run_before_anything_starts(stack):
    stack.servers.write_text(
        "servers:\n  crm:\n    url: https://crm.example.com/mcp\n    auth:\n      method: oauth2\n"
        "      token_url: https://idp.example.com/token\n      client_id: gw\n"
        "      client_secret_ref: env://WALK_NOT_SET_SECRET\n")
    stack.env.pop("WALK_NOT_SET_SECRET", None)
    proc = stack.start()
    assert proc.wait(60) == 2
    out = stack.log.read_text()
    assert ("mcp_servers.yaml:8: servers.crm.auth.client_secret_ref: environment variable WALK_NOT_SET_SECRET "
            "is not set") in out, out
    assert "unexpected" not in out and "Traceback" not in out
    assert not (stack.data_dir / "postgres").exists()
