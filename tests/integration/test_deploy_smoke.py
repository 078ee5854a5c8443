"""Run the Kubernetes pod specs as processes: the real `mcpgw` console script with the manifests' args
and env, ConfigMaps/Secrets written where the volumes would mount them, real PostgreSQL.

This is what a cluster would do, minus the container runtime: mount paths become temp folders,
ports become free loopback ports, and the issuer is a loopback OIDC issuer (the manifests carry a
placeholder). Then the probes must pass, an agent's call must get a PDP decision through the
configured topology (loopback sidecar or standalone with its token), and SIGTERM must exit cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.fixtures.oidc import running_issuer
from tests.unit.deploy_support import K8S, dockerfile_env, kustomize, mcpgw_containers, port_number

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


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
async def test_pod_spec_starts_decides_and_stops(topology: str, tmp_path: Path, pg_dsn: str) -> None:
    objects = kustomize(TOPOLOGIES[topology])
    secrets = {"database-url": pg_dsn, "mcp-session-secret": "s" * 32, "pdp-api-token": "t" * 32}
    pod = Pod(objects, tmp_path, secrets)
    pdp_port = pod.ports["pdp"]
    procs: list[tuple[asyncio.subprocess.Process, dict[str, Any], Path]] = []
    async with running_issuer() as issuer, aiohttp.ClientSession() as session:
        try:
            # PDP first, as the pod's readiness would gate traffic on it anyway.
            for pod_spec, container in sorted(pod.containers, key=lambda pc: pc[1]["name"] != "pdp"):
                pod.lay_out(pod_spec, container)
                extra = {}
                if container["name"] == "gateway":
                    # The manifests name a placeholder IdP and the in-cluster PDP address.
                    extra = {"MCPGW_GATEWAY_ISSUER": issuer.issuer, "MCPGW_GATEWAY_PDP_URL": f"http://127.0.0.1:{pdp_port}"}
                log = tmp_path / f"{container['name']}.log"
                with log.open("wb") as out:
                    proc = await asyncio.create_subprocess_exec(
                        *pod.command(container), env=pod.environ(container, extra), cwd=tmp_path,
                        stdout=out, stderr=asyncio.subprocess.STDOUT)
                procs.append((proc, container, log))
                for probe in ("startupProbe", "readinessProbe"):
                    get = container[probe]["httpGet"]
                    assert port_number(container, get["port"])
                    await wait_ready(session, f"http://127.0.0.1:{pod.ports[container['name']]}{get['path']}", proc, log)

            gateway = f"http://127.0.0.1:{pod.ports['gateway']}"
            async with session.get(gateway + "/mcp/servers") as resp:
                assert resp.status == 401
            token = issuer.mint("admin@example.com", username="admin@example.com", audience="mcpgw")
            async with session.get(gateway + "/mcp/servers", headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.text()
                assert resp.status == 200 and "example" in body, body
            token = issuer.mint("nobody@example.com", username="nobody@example.com", audience="mcpgw")
            async with session.get(gateway + "/mcp/servers", headers={"Authorization": f"Bearer {token}"}) as resp:
                assert "example" not in await resp.text()  # default deny hides the backend
        finally:
            for proc, _container, _log in procs:
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
            codes = [await asyncio.wait_for(proc.wait(), 30) for proc, _c, _l in procs]
    assert codes == [0] * len(procs), [tail(log) for _p, _c, log in procs]
    assert not spooled(tmp_path), "audit events left in the spool although Postgres was up"
