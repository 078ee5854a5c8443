"""Passthrough reaches backends on the upstream client's one request path: a credential that cannot
be had is a 502 as on every other path (it was a 500), and an oauth2 token the backend revoked is
refreshed and the message sent once more (it was relayed as a 401)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import initialize, rpc, session_headers

SECRET = "s3cr3t-value"
TOOL = {"name": "echo", "inputSchema": {"type": "object"}}


@dataclass
class OauthBackend:
    """A token endpoint (tok-1, tok-2, …) and a 2025-era MCP backend refusing revoked tokens with 401."""

    grants: int = 0
    seen: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)

    async def token(self, request: web.Request) -> web.Response:
        expected = "Basic " + base64.b64encode(f"gw-client:{SECRET}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"error": "invalid_client"}, status=401)
        self.grants += 1
        return web.json_response({"access_token": f"tok-{self.grants}", "token_type": "Bearer", "expires_in": 300})

    async def mcp(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.seen.append(auth)
        if auth.removeprefix("Bearer ") in self.revoked:
            return web.json_response({"error": "invalid_token"}, status=401)
        message = await request.json()
        if "id" not in message:
            return web.Response(status=202)
        if message["method"] == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "oauth", "version": "1"}}
            return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": result},
                                     headers={"Mcp-Session-Id": "upstream-1"})
        if message["method"] == "tools/list":
            return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": {"tools": [TOOL]}})
        return web.json_response({"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": "no"}},
                                 status=400)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str) -> AsyncIterator[tuple[Stack, OauthBackend]]:
    backend = OauthBackend()
    app = web.Application()
    app.router.add_post("/token", backend.token)
    app.router.add_post("/mcp", backend.mcp)
    runner, url = await start_site(app)
    secret = tmp_path / "secret"
    secret.write_text(SECRET)

    def oauth2(client_id: str) -> dict[str, Any]:
        return {"url": url + "/mcp", "auth": {"method": "oauth2", "token_url": url + "/token", "client_id": client_id,
                                              "client_secret_ref": f"file://{secret}"}}

    try:
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": oauth2("gw-client"), "beta": oauth2("wrong-client")},
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
