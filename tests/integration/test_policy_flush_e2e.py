"""End to end: a policy activated in the PDP's database ends a gateway's cached allow at once (LISTEN).

Real PDP in database mode and a real gateway on the same test database; the decision cache TTL is
60 s, so only the policy-change notification can explain a deny within a few seconds.
"""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from gateway.app import create_app
from gateway.policy_listener import policy_listener_ctx
from gateway.settings import load_gateway_settings
from pdp import store
from pdp.app import create_app as create_pdp
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.fixtures.oidc import OidcIssuer, running_issuer
from tests.integration.gateway_harness import AUDIENCE, POLICY, servers_yaml, start_site
from tests.integration.pdp_helpers import eventually, pdp_settings

DEV = "dev@example.com"
DENY_ECHO = textwrap.dedent(POLICY).replace(
    "rules:\n", 'rules:\n  - name: "Block echo"\n    condition:\n      tool_name_pattern: "echo"\n'
    "    action: deny\n    priority: 200\n", 1)
LISTENERS = f"FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN \"{store.CHANNEL}\"'"


@dataclass
class Rig:
    url: str
    issuer: OidcIssuer
    session: aiohttp.ClientSession
    admin: asyncpg.Pool

    async def echo(self) -> int:
        """Status of one echo call by the developer through REST invoke."""
        token = self.issuer.mint(DEV, username=DEV, audience=AUDIENCE)
        async with self.session.post(self.url + "/mcp/invoke?mcp_server=alpha", headers={"Authorization": f"Bearer {token}"},
                                     json={"tool_name": "echo", "parameters": {"text": "hi"}}) as resp:
            await resp.read()
            return resp.status

    async def deny_echo(self) -> None:
        """Store and activate a version that denies echo (as the admin API does: pg_notify at commit)."""
        await store.create_version(self.admin, DENY_ECHO, "test", "deny echo", activate=True)

    async def denied_within(self, seconds: float) -> bool:
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            if await self.echo() == 403:
                return True
            await asyncio.sleep(0.02)
        return False


async def start_rig(tmp_path: Path, pg_dsn: str, backend: Backend, *, listener: bool) -> AsyncIterator[Rig]:
    (tmp_path / "policy.yaml").write_text(textwrap.dedent(POLICY))
    servers = tmp_path / "mcp_servers.yaml"
    servers.write_text(servers_yaml({"alpha": {"url": backend.url}}))
    pdp_runner, pdp_url = await start_site(create_pdp(pdp_settings(tmp_path, pg_dsn, audit_postgres=False)))
    admin = await asyncpg.create_pool(pg_dsn, min_size=1, max_size=2)
    try:
        async with running_issuer() as issuer, aiohttp.ClientSession() as session:
            app = create_app(load_gateway_settings(environ={
                "DATABASE_URL": pg_dsn, "MCPGW_DATA_DIR": str(tmp_path / "data"),
                "AUDIT_LOG_FILE": str(tmp_path / "audit.jsonl"), "MCPGW_GATEWAY_ISSUER": issuer.issuer,
                "MCPGW_GATEWAY_AUDIENCE": AUDIENCE, "MCPGW_GATEWAY_PDP_URL": pdp_url, "MCPGW_GATEWAY_ENVIRONMENT": "development",
                "MCPGW_GATEWAY_SERVERS_FILE": str(servers), "MCPGW_GATEWAY_DECISION_CACHE_TTL": "60",
            }, dotenv=None))
            if not listener:
                app.cleanup_ctx.remove(policy_listener_ctx)
            runner, url = await start_site(app)
            try:
                yield Rig(url, issuer, session, admin)
            finally:
                await runner.cleanup()
    finally:
        await admin.close()
        await pdp_runner.cleanup()


@pytest.fixture
async def rig(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Rig]:
    async for r in start_rig(tmp_path, pg_dsn, mcp_backend, listener=True):
        yield r


async def warm(rig: Rig) -> None:
    """An allow in the gateway's cache, and both services listening."""

    async def both_listening() -> bool:
        return await rig.admin.fetchval(f"SELECT count(*) {LISTENERS}") == 2

    await eventually(both_listening)
    assert await rig.echo() == 200 and await rig.echo() == 200


async def test_activation_denies_the_next_request_despite_a_60s_cache(rig: Rig) -> None:
    await warm(rig)
    await rig.deny_echo()
    assert await rig.denied_within(5.0)
    assert await rig.echo() == 403  # and stays denied


async def test_without_the_listener_the_cached_allow_outlives_the_change(
    tmp_path: Path, pg_dsn: str, mcp_backend: Backend,
) -> None:
    """The control: shows the test above fails when the listener is not running."""
    async for rig in start_rig(tmp_path, pg_dsn, mcp_backend, listener=False):
        assert await rig.echo() == 200 and await rig.echo() == 200
        await rig.deny_echo()
        assert not await rig.denied_within(1.0)


async def test_a_change_after_the_listener_was_killed_still_flushes(rig: Rig) -> None:
    await warm(rig)
    old = {r["pid"] for r in await rig.admin.fetch(f"SELECT pid {LISTENERS}")}
    # Kill the LISTEN connections (gateway's and PDP's) from the server side, as a failover would.
    assert await rig.admin.fetchval(f"SELECT count(pg_terminate_backend(pid)) {LISTENERS}") == 2

    async def both_back() -> bool:
        pids = {r["pid"] for r in await rig.admin.fetch(f"SELECT pid {LISTENERS}")}
        return len(pids) == 2 and not pids & old

    await eventually(both_back, within=5.0)
    assert await rig.echo() == 200  # the reconnect flush re-asks the PDP: still allowed under v1
    await rig.deny_echo()
    assert await rig.denied_within(5.0)
