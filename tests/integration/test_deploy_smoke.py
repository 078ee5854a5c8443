"""The Kubernetes pod specs run as processes (tests/integration/deploy_pod.py): real `mcpgw` console
script with the manifests' args and env, ConfigMaps/Secrets laid out where the volumes mount, a real
PostgreSQL and a loopback OIDC issuer (the manifests carry a placeholder).

The probes must pass, an agent's call must get a PDP decision through the configured topology
(loopback sidecar, or standalone with its token), and SIGTERM must end both processes cleanly.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.oidc import running_issuer
from tests.integration.deploy_pod import TOPOLOGIES, run_pod, spooled, tail


@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
async def test_pod_spec_starts_decides_and_stops(topology: str, tmp_path: Path, pg_dsn: str) -> None:
    secrets = {"database-url": pg_dsn, "mcp-session-secret": "s" * 32, "pdp-api-token": "t" * 32}
    async with running_issuer() as issuer, aiohttp.ClientSession() as session:
        async with run_pod(topology, tmp_path, secrets, issuer.issuer) as pod:
            servers = pod.url("gateway") + "/mcp/servers"
            async with session.get(servers) as resp:
                assert resp.status == 401
            token = issuer.mint("admin@example.com", username="admin@example.com", audience="mcpgw")
            async with session.get(servers, headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.text()
                assert resp.status == 200 and "example" in body, body
            token = issuer.mint("nobody@example.com", username="nobody@example.com", audience="mcpgw")
            async with session.get(servers, headers={"Authorization": f"Bearer {token}"}) as resp:
                assert resp.status == 200
                assert "example" not in await resp.text()  # default deny hides the backend
    assert pod.exit_codes == {"gateway": 0, "pdp": 0}, {n: tail(log) for n, log in pod.logs.items()}
    assert not spooled(tmp_path), "audit events left in the spool although Postgres was up"
