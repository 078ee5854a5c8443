"""Run a Kubernetes topology's mcpgw containers as local processes (tests and bench/bench_deploy.py).

What a cluster would do, minus the container runtime: the real `mcpgw` console script with the
manifests' args and env (plus the image's ENV), ConfigMaps and Secrets written where the volumes
mount (mount paths become folders under `root`), ports replaced by free loopback ports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.deploy.deploy_support import (
    K8S,
    dockerfile_env,
    kustomize,
    mcpgw_containers,
    port_number,
)

MCPGW = Path(sys.executable).with_name("mcpgw")
TOPOLOGIES = {"base": K8S / "base", "standalone-pdp": K8S / "overlays" / "standalone-pdp"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Pod:
    """The mcpgw containers of one topology, laid out under `root` with their volumes."""

    def __init__(self, objects: list[dict[str, Any]], root: Path, secrets: dict[str, str]) -> None:
        self.objects, self.root, self.secrets = objects, root, secrets
        self.containers = mcpgw_containers(objects)
        self.ports = {c["name"]: free_port() for _pod, c in self.containers}

    def config_map(self, name: str) -> dict[str, str]:
        return next(o for o in self.objects if o["kind"] == "ConfigMap" and o["metadata"]["name"] == name)["data"]

    def remap(self, container: dict[str, Any], value: str) -> str:
        """A path inside the container → the folder standing in for its volume."""
        mounts = sorted(container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"]))
        pattern = "|".join(re.escape(m["mountPath"]) + r"(?=/|\b|$)" for m in mounts)
        folders = {m["mountPath"]: str(self.root / m["name"]) for m in mounts}
        return re.sub(pattern, lambda m: folders[m.group(0)], value) if mounts else value

    def lay_out(self, pod: dict[str, Any], container: dict[str, Any]) -> None:
        volumes = {v["name"]: v for v in pod["volumes"]}
        for mount in container.get("volumeMounts", []):
            folder = self.root / mount["name"]
            folder.mkdir(parents=True, exist_ok=True)
            volume = volumes[mount["name"]]
            if "configMap" in volume:
                for key, text in self.config_map(volume["configMap"]["name"]).items():
                    (folder / key).write_text(self.remap(container, text))
            elif "secret" in volume:
                (folder / "example-token").write_text("backend-token")

    def command(self, container: dict[str, Any]) -> list[str]:
        args = [self.remap(container, a) for a in container["args"]]
        args[args.index("--port") + 1] = str(self.ports[container["name"]])
        args[args.index("--host") + 1] = "127.0.0.1"
        return [str(MCPGW), *args]

    def environ(self, container: dict[str, Any], extra: dict[str, str]) -> dict[str, str]:
        env = {k: self.remap(container, v) for k, v in dockerfile_env("runtime").items() if k != "PATH"}
        for item in container.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            env[item["name"]] = self.secrets[ref["key"]] if ref else self.remap(container, str(item["value"]))
        return {"PATH": os.environ["PATH"], **env, **extra}


def tail(log: Path, size: int = 3000) -> str:
    """The end of a process log, for failure messages."""
    return log.read_text(errors="replace")[-size:]


def spooled(root: Path) -> list[Path]:
    """Audit events left behind in any spool folder."""
    return [p for p in root.rglob("*") if "audit-spool" in p.parts and p.is_file() and p.stat().st_size]


async def wait_ready(session: aiohttp.ClientSession, url: str, proc: asyncio.subprocess.Process, log: Path) -> None:
    for _ in range(300):
        assert proc.returncode is None, f"exited {proc.returncode}:\n{tail(log)}"
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(url) as resp:
                if resp.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never ready:\n{tail(log)}")


@dataclass
class Running:
    """A started pod: ports by container name, start-to-ready and SIGTERM-to-exit seconds, exit codes."""

    pod: Pod
    ready_seconds: dict[str, float] = field(default_factory=dict)
    stop_seconds: dict[str, float] = field(default_factory=dict)
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def url(self, container: str) -> str:
        """Base URL of a container's listener."""
        return f"http://127.0.0.1:{self.pod.ports[container]}"


@contextlib.asynccontextmanager
async def run_pod(topology: str, root: Path, secrets: dict[str, str], issuer: str,
                  gateway_env: dict[str, str] | None = None) -> AsyncIterator[Running]:
    """Start the PDP, then the gateway (each waited for through its own probes); SIGTERM both on exit."""
    pod = Pod(kustomize(TOPOLOGIES[topology]), root, secrets)
    running = Running(pod)
    procs: list[tuple[str, asyncio.subprocess.Process]] = []
    async with aiohttp.ClientSession() as session:
        try:
            for pod_spec, container in sorted(pod.containers, key=lambda pc: pc[1]["name"] != "pdp"):
                name = container["name"]
                pod.lay_out(pod_spec, container)
                extra = {}
                if name == "gateway":
                    # The manifests name a placeholder IdP and the in-cluster PDP address.
                    extra = {"MCPGW_GATEWAY_ISSUER": issuer, "MCPGW_GATEWAY_PDP_URL": f"http://127.0.0.1:{pod.ports['pdp']}",
                             **(gateway_env or {})}
                log = running.logs[name] = root / f"{name}.log"
                started = time.perf_counter()
                with log.open("wb") as out:
                    proc = await asyncio.create_subprocess_exec(
                        *pod.command(container), env=pod.environ(container, extra), cwd=root,
                        stdout=out, stderr=asyncio.subprocess.STDOUT)
                procs.append((name, proc))
                for probe in ("startupProbe", "readinessProbe"):
                    get = container[probe]["httpGet"]
                    assert port_number(container, get["port"]) in [p["containerPort"] for p in container["ports"]]
                    await wait_ready(session, f"{running.url(name)}{get['path']}", proc, log)
                running.ready_seconds[name] = time.perf_counter() - started
            yield running
        finally:
            # Gateway first, as the PDP sidecar's longer preStop pause arranges in the cluster.
            for name, proc in reversed(procs):
                started = time.perf_counter()
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                running.exit_codes[name] = await asyncio.wait_for(proc.wait(), 30)
                running.stop_seconds[name] = time.perf_counter() - started
