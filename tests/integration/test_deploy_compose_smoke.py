"""docker-compose.yml run as local processes: PDP, gateway and the demo backend with the compose
commands, the image's ENV/ENTRYPOINT/CMD, `.env` interpolation, bind mounts copied into a temp folder,
service names resolved to loopback ports. The `postgres` service is replaced by the test database and
the issuer by a loopback OIDC issuer. An agent's tool call must reach the demo backend through the
gateway and the standalone PDP (with its token); an unknown user must be refused; SIGTERM ends all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import aiohttp
import yaml

from tests.deploy.deploy_support import ROOT, dockerfile_env, dockerfile_exec_form, interpolate
from tests.fixtures.oidc import running_issuer
from tests.integration.deploy_pod import MCPGW, free_port, tail, wait_ready

SPEC = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOTENV = {"POSTGRES_PASSWORD": "unused", "MCPGW_PDP_API_TOKEN": "t" * 32,
          "MCPGW_GATEWAY_MCP_SESSION_SECRET": "s" * 32, "MCPGW_GATEWAY_AUDIENCE": "mcpgw"}
ORDER = ("demo-backend", "pdp", "gateway")


def container_port(svc: dict[str, Any]) -> int:
    return int(svc["expose"][0]) if "expose" in svc else int(svc["ports"][0].rsplit(":", 1)[-1])


class Stack:
    """Ports, folders and rewriting rules for running the compose services side by side."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ports = {name: free_port() for name in ORDER}
        # "pdp:8181" → "127.0.0.1:<port>"; also the service's own localhost in its healthcheck.
        self.hosts = {f"{n}:{container_port(SPEC['services'][n])}": f"127.0.0.1:{self.ports[n]}" for n in ORDER}

    def rehost(self, text: str) -> str:
        for old, new in self.hosts.items():
            text = text.replace(old, new)
        return text

    def mounts(self, name: str) -> dict[str, Path]:
        """Container path → local folder: bind mounts copied (and rehosted), named volumes empty."""
        out = {}
        for volume in SPEC["services"][name].get("volumes", []):
            source, target, *_ = volume.split(":")
            local = self.root / name / PurePosixPath(target).relative_to("/")
            if source.startswith("."):
                shutil.copytree(ROOT / source, local)
                for path in local.rglob("*.yaml"):
                    path.write_text(self.rehost(path.read_text()))
            else:
                local.mkdir(parents=True)
            out[target] = local
        return out

    def command(self, name: str) -> tuple[list[str], dict[str, str]]:
        svc = SPEC["services"][name]
        stage = svc["build"]["target"]
        mounts = self.mounts(name)
        pattern = "|".join(re.escape(t) + r"(?=/|$)" for t in sorted(mounts, key=len, reverse=True))

        def local(value: str) -> str:
            return re.sub(pattern, lambda m: str(mounts[m.group(0)]), value) if mounts else value

        env = {k: local(v) for k, v in dockerfile_env(stage).items() if k != "PATH"}
        env |= {k: local(self.rehost(interpolate(str(v), DOTENV))) for k, v in svc.get("environment", {}).items()}
        entry = dockerfile_exec_form(stage, "ENTRYPOINT")
        args = [self.rehost(a) for a in svc.get("command") or dockerfile_exec_form(stage, "CMD")]
        port = str(container_port(svc))
        args = [str(self.ports[name]) if a == port else "127.0.0.1" if a == "0.0.0.0" else a for a in args]
        program = [str(MCPGW)] if entry == ["mcpgw"] else [sys.executable, *entry[1:]]
        return [*program, *args], {"PATH": os.environ["PATH"], **env}


async def test_compose_stack_serves_a_tool_call(tmp_path: Path, pg_dsn: str) -> None:
    stack = Stack(tmp_path)
    procs: dict[str, asyncio.subprocess.Process] = {}
    async with running_issuer() as issuer, aiohttp.ClientSession() as session:
        DOTENV["MCPGW_GATEWAY_ISSUER"] = issuer.issuer
        try:
            for name in ORDER:
                argv, env = stack.command(name)
                if "DATABASE_URL" in env:
                    env["DATABASE_URL"] = pg_dsn  # the compose `postgres` service
                for key in ("MCPGW_GATEWAY_HOST", "MCPGW_PDP_HOST"):
                    env[key] = "127.0.0.1"  # the image listens on 0.0.0.0; loopback is enough here
                log = tmp_path / f"{name}.log"
                with log.open("wb") as out:
                    procs[name] = await asyncio.create_subprocess_exec(
                        *argv, env=env, cwd=tmp_path, stdout=out, stderr=asyncio.subprocess.STDOUT)
                health = SPEC["services"][name].get("healthcheck")
                if health:
                    [url] = re.findall(r"http://[^'\"]+", stack.rehost(health["test"][-1].replace("127.0.0.1:", f"{name}:")))
                    await wait_ready(session, url, procs[name], log)
                else:
                    await wait_listening(stack.ports[name], procs[name], log)

            invoke = f"http://127.0.0.1:{stack.ports['gateway']}/mcp/invoke?mcp_server=demo"
            call = {"tool_name": "echo", "parameters": {"text": "through compose"}}
            token = issuer.mint("admin@example.com", username="admin@example.com", audience="mcpgw")
            async with session.post(invoke, json=call, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.text()
                assert resp.status == 200 and "through compose" in body, body + tail(tmp_path / "gateway.log")
            token = issuer.mint("nobody@example.com", username="nobody@example.com", audience="mcpgw")
            async with session.post(invoke, json=call, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 403
        finally:
            for proc in reversed(procs.values()):
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            codes = {n: await asyncio.wait_for(p.wait(), 30) for n, p in procs.items()}
    # Only our services are held to a clean exit (the SDK demo server dies by the signal).
    assert (codes["pdp"], codes["gateway"]) == (0, 0), {n: tail(tmp_path / f"{n}.log") for n in ORDER}


async def wait_listening(port: int, proc: asyncio.subprocess.Process, log: Path) -> None:
    """Wait until something accepts connections on the port (the demo backend has no health route)."""
    for _ in range(300):
        assert proc.returncode is None, tail(log)
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listening on {port}:\n{tail(log)}")
