"""Passthrough reaches backends on the upstream client's one request path: a credential that cannot
be had is a 502 as on every other path (it was a 500), and an oauth2 token the backend revoked is
refreshed and the message sent once more (it was relayed as a 401)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.oauth_backend import CLIENT_ID, SECRET, OauthBackend
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import initialize, rpc, session_headers


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str) -> AsyncIterator[tuple[Stack, OauthBackend]]:
    backend = OauthBackend()
    runner, url = await start_site(backend.app())
    secret = tmp_path / "secret"
    secret.write_text(SECRET)

    def oauth2(client_id: str) -> dict[str, Any]:
        return {"url": url + "/mcp", "auth": {"method": "oauth2", "token_url": url + "/token", "client_id": client_id,
                                              "client_secret_ref": f"file://{secret}"}}

    try:
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": oauth2(CLIENT_ID), "beta": oauth2("wrong-client")},
                                 env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"}) as s:
            yield s, backend
    finally:
        await runner.cleanup()


async def test_a_revoked_token_is_refreshed_on_passthrough(stack: tuple[Stack, OauthBackend]) -> None:
    gateway, backend = stack
    sid = await initialize(gateway, "/servers/alpha/mcp")
    backend.revoked.update(f"tok-{n}" for n in range(1, backend.grants + 1))  # the backend forgets every token so far
    before = backend.grants
    status, answer, _ = await rpc(gateway, "/servers/alpha/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
                                  headers=session_headers(sid))
    assert status == 200 and [t["name"] for t in answer["result"]["tools"]] == ["echo"]
    assert backend.grants == before + 1 and backend.seen[-1] == f"Bearer tok-{before + 1}"


async def test_a_credential_failure_is_a_502_on_passthrough(stack: tuple[Stack, OauthBackend]) -> None:
    gateway, _ = stack
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    status, answer, _ = await rpc(gateway, "/servers/beta/mcp", body)
    assert status == 502 and "credential unavailable" in answer["error"]["message"]
    assert SECRET not in answer["error"]["message"]
