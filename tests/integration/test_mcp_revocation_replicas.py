"""A DELETEd MCP session ends on every gateway replica sharing the database (LISTEN/NOTIFY)."""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.keys import MCP_STATE
from gateway.mcp.revocations import CHANNEL
from gateway.settings import load_gateway_settings
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import ADMIN, initialize, rpc, session_headers

SECRET = "shared-secret"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}},
                             env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": SECRET}) as s:
        yield s


def replica(stack: Stack, tmp_path: Path, pg_dsn: str | None) -> web.Application:
    """Another gateway process in all but name: same secret, registry, PDP, issuer (and database)."""
    env = {
        "MCPGW_GATEWAY_ISSUER": stack.issuer.issuer, "MCPGW_GATEWAY_AUDIENCE": "mcpgw", "MCPGW_GATEWAY_ENVIRONMENT": "development",
        "MCPGW_GATEWAY_PDP_URL": stack.pdp_url, "MCPGW_GATEWAY_SERVERS_FILE": str(stack.settings.servers_file),
        "MCPGW_GATEWAY_MCP_SESSION_SECRET": SECRET, "MCPGW_DATA_DIR": str(tmp_path / "replica"),
        "AUDIT_LOG_FILE": str(tmp_path / "replica-audit.jsonl"),
    }
    env.update({"DATABASE_URL": pg_dsn} if pg_dsn else {"MCPGW_AUDIT_POSTGRES": "false"})
    return create_app(load_gateway_settings(environ=env, dotenv=None))


def call(path: str) -> dict[str, Any]:
    name = "echo" if path != "/mcp" else "alpha__echo"
    return {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {"name": name, "arguments": {"text": "b"}}}


async def status_of(stack: Stack, path: str, sid: str) -> int:
    status, _, _ = await rpc(stack, path, call(path), headers=session_headers(sid))
    return status


async def refused_within(stack: Stack, path: str, sid: str, seconds: float) -> bool:
    """True once the session answers 404 on `stack`, polling for at most `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        if await status_of(stack, path, sid) == 404:
            return True
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)


async def delete(stack: Stack, path: str, sid: str) -> int:
    status, _, _ = await stack.call("DELETE", path, subject=ADMIN, headers=session_headers(sid))
    return status


@pytest.mark.parametrize("path", ["/mcp", "/servers/alpha/mcp"])
async def test_delete_on_one_replica_ends_the_session_on_the_other(
    stack: Stack, tmp_path: Path, pg_dsn: str, mcp_backend: Backend, path: str,
) -> None:
    runner, url = await start_site(replica(stack, tmp_path, pg_dsn))
    other = dataclasses.replace(stack, url=url)
    try:
        sid = await initialize(stack, path)  # created on replica A
        assert await status_of(stack, path, sid) == 200 and await status_of(other, path, sid) == 200
        assert await delete(other, path, sid) == 200  # ended on replica B
        assert await status_of(other, path, sid) == 404
        assert await refused_within(stack, path, sid, 5.0)  # A learned it through NOTIFY (sessions live far longer)
        # Refused by the gateway itself: a call on the revoked session never reaches the backend.
        # (Clear only now: polls sent before A heard the NOTIFY were still served.)
        mcp_backend.clear()
        assert await status_of(stack, path, sid) == 404
        assert not [r for r in mcp_backend.requests if r.method == "POST"]
    finally:
        await runner.cleanup()


async def test_a_replica_started_later_loads_revocations_and_rows_hold_only_hashes(
    stack: Stack, tmp_path: Path, pg_dsn: str,
) -> None:
    sid = await initialize(stack, "/mcp")
    assert await delete(stack, "/mcp", sid) == 200
    runner, url = await start_site(replica(stack, tmp_path, pg_dsn))
    try:
        assert await status_of(dataclasses.replace(stack, url=url), "/mcp", sid) == 404  # at once, no wait
    finally:
        await runner.cleanup()
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = [dict(r) for r in await conn.fetch("SELECT * FROM mcp_revoked_sessions")]
    finally:
        await conn.close()
    assert len(rows) == 1
    text = repr(rows)
    assert sid not in text and ADMIN not in text


async def test_malformed_notifications_are_ignored_and_expired_rows_pruned(stack: Stack, pg_dsn: str) -> None:
    revocations = stack.app[MCP_STATE].revocations
    conn = await asyncpg.connect(pg_dsn)
    try:
        await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, "not a revocation")
        await conn.execute(
            "INSERT INTO mcp_revoked_sessions (session_hash, subject_hash, expires_at)"
            " VALUES ($1, 's', now() - interval '1 hour'), ($2, 's', now() + interval '1 hour')",
            "aa" * 32, "bb" * 32,
        )
        sid = await initialize(stack, "/mcp")
        assert await status_of(stack, "/mcp", sid) == 200  # the listener survived the junk
        assert await revocations.prune() == 1
        assert [r["session_hash"] for r in await conn.fetch("SELECT session_hash FROM mcp_revoked_sessions")] == ["bb" * 32]
    finally:
        await conn.close()


async def test_without_a_database_a_delete_ends_the_session_on_its_replica_only(
    stack: Stack, tmp_path: Path,
) -> None:
    runner, url = await start_site(replica(stack, tmp_path, None))
    other = dataclasses.replace(stack, url=url)
    try:
        sid = await initialize(stack, "/mcp")
        assert await delete(other, "/mcp", sid) == 200
        assert await status_of(other, "/mcp", sid) == 404
        assert await status_of(stack, "/mcp", sid) == 200  # documented limit: per replica
    finally:
        await runner.cleanup()
