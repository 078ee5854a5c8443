"""`/servers/{name}/mcp` over raw HTTP: sessions, headers, policy, both eras (real stack)."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_legacy,
)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    DEV,
    META,
    MODERN,
    initialize,
    modern_headers,
    rpc,
    sdk_session,
    session_headers,
)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend,
                mcp_backend_legacy: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn,
        {"alpha": {"url": mcp_backend.url}, "beta": {"url": mcp_backend_json.url},
         "legacy": {"url": mcp_backend_legacy.url}},
        env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"},
    ) as s:
        yield s


async def test_handshake_session_is_minted_and_bound(stack: Stack, mcp_backend: Backend) -> None:
    sid = await initialize(stack, "/servers/alpha/mcp")
    assert sid.startswith("gw1.")
    # The backend's own session id never reaches the client.
    upstream_ids = {r.headers.get("mcp-session-id") for r in mcp_backend.requests} - {None}
    assert upstream_ids and sid not in upstream_ids
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", listing, headers=session_headers(sid))
    assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}
    # Another subject presenting the same id: unknown session.
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", listing, DEV, session_headers(sid))
    assert status == 404
    # Same subject, other endpoint: unknown too.
    status, _, _ = await rpc(stack, "/servers/beta/mcp", listing, headers=session_headers(sid))
    assert status == 404
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", listing)
    assert status == 400 and "Mcp-Session-Id" in answer["error"]["message"]
    status, _, _ = await rpc(stack, "/servers/alpha/mcp", listing, headers=session_headers("gw1.forged"))
    assert status == 404
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", listing,
                                 headers={"Mcp-Session-Id": sid, "MCP-Protocol-Version": "1999-01-01"})
    assert status == 400
    async with stack.session.delete(stack.url + "/servers/alpha/mcp",
                                    headers={**stack.headers(ADMIN), **session_headers(sid)}) as resp:
        assert resp.status == 200
    status, _, _ = await rpc(stack, "/servers/alpha/mcp", listing, headers=session_headers(sid))
    assert status == 404


async def test_policy_filters_lists_and_denies_calls(stack: Stack, mcp_backend_json: Backend) -> None:
    sid = await initialize(stack, "/servers/beta/mcp", DEV)
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    _, answer, _ = await rpc(stack, "/servers/beta/mcp", listing, DEV, session_headers(sid))
    assert [t["name"] for t in answer["result"]["tools"]] == ["echo"]  # dev may only call beta:echo
    mcp_backend_json.clear()
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "add", "arguments": {"a": 1, "b": 2}}}
    status, answer, _ = await rpc(stack, "/servers/beta/mcp", call, DEV, session_headers(sid))
    assert status == 200 and answer["result"]["isError"] is True
    assert "Denied by gateway policy" in answer["result"]["content"][0]["text"]
    assert mcp_backend_json.methods().count("tools/call") == 0  # nothing forwarded
    call["params"] = {"name": "echo", "arguments": {"text": "hi"}}
    status, answer, _ = await rpc(stack, "/servers/beta/mcp", call, DEV, session_headers(sid))
    assert status == 200 and answer["result"]["content"][0]["text"] == "hi"


async def test_client_token_never_reaches_backend(stack: Stack, mcp_backend: Backend) -> None:
    mcp_backend.clear()
    sid = await initialize(stack, "/servers/alpha/mcp")
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    await rpc(stack, "/servers/alpha/mcp", call, headers={**session_headers(sid), "Cookie": "a=b"})
    assert mcp_backend.requests
    for r in mcp_backend.requests:
        assert "authorization" not in r.headers and "cookie" not in r.headers


async def test_transport_checks(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
    status, _, _ = await rpc(stack, "/servers/alpha/mcp", body, headers={**modern_headers("tools/list"),
                                                                          "Accept": "application/json"})
    assert status == 406
    status, _, _ = await rpc(stack, "/servers/alpha/mcp", body, headers={**modern_headers("tools/list"),
                                                                          "Origin": "http://evil.example"})
    assert status == 403
    status, answer, _ = await rpc(stack, "/servers/nope/mcp", body, headers=modern_headers("tools/list"))
    assert status == 404
    async with stack.session.post(stack.url + "/servers/alpha/mcp", data=b"{nope",
                                  headers={**stack.headers(ADMIN), "Accept": ACCEPT,
                                           "Content-Type": "application/json"}) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == -32700


async def test_modern_era_header_validation_and_calls(stack: Stack, mcp_backend: Backend) -> None:
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "modern"}, "_meta": META}}
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", call, headers=modern_headers("tools/call", "add"))
    assert status == 400 and answer["error"]["code"] == -32020
    mcp_backend.clear()
    # The mismatch was caught before policy or the backend saw anything.
    assert mcp_backend.requests == []
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", call, headers=modern_headers("tools/call", "echo"))
    assert status == 200 and answer["result"]["content"][0]["text"] == "modern"
    assert answer["result"].get("resultType") == "complete"
    bad = {**call, "params": {**call["params"], "_meta": {**META, "io.modelcontextprotocol/protocolVersion": "2099-01-01"}}}
    hdrs = {**modern_headers("tools/call", "echo"), "MCP-Protocol-Version": "2099-01-01"}
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", bad, headers=hdrs)
    assert status == 400 and answer["error"]["code"] == -32022 and MODERN in answer["error"]["data"]["supported"]
    async with stack.session.get(stack.url + "/servers/alpha/mcp",
                                 headers={**stack.headers(ADMIN), "Accept": "text/event-stream",
                                          "MCP-Protocol-Version": MODERN}) as resp:
        assert resp.status == 405


async def test_modern_client_reaches_legacy_backend(stack: Stack) -> None:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}
    status, answer, _ = await rpc(stack, "/servers/legacy/mcp", listing, headers=modern_headers("tools/list"))
    assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}, answer
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "across eras"}, "_meta": META}}
    status, answer, _ = await rpc(stack, "/servers/legacy/mcp", call, headers=modern_headers("tools/call", "echo"))
    assert status == 200 and answer["result"]["content"][0]["text"] == "across eras"
    assert answer["result"]["resultType"] == "complete"


async def test_modern_sdk_client_discovers_a_legacy_backend(stack: Stack) -> None:
    # server/discover is answered from the backend's initialize (it has no discover of its own).
    async with sdk_session(stack, "/servers/legacy/mcp", ADMIN, "modern") as session:
        listed = await session.list_tools()
        assert "echo" in {t.name for t in listed.tools}


async def test_unauthenticated_gets_resource_metadata(stack: Stack) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    status, _, headers = await rpc(stack, "/servers/alpha/mcp", body, subject=None)
    assert status == 401
    assert f'resource_metadata="{stack.url}/.well-known/oauth-protected-resource/servers/alpha/mcp"' in headers["WWW-Authenticate"]
    # A token minted for another resource (audience) is refused like no token at all.
    other = stack.issuer.mint(ADMIN, username=ADMIN, audience="https://other.example.com/mcp")
    status, _, headers = await rpc(stack, "/mcp", body, subject=None, headers={"Authorization": f"Bearer {other}"})
    assert status == 401 and 'error="invalid_token"' in headers["WWW-Authenticate"]
    assert f'resource_metadata="{stack.url}/.well-known/oauth-protected-resource/mcp"' in headers["WWW-Authenticate"]
    status, doc, _ = await stack.call("GET", "/.well-known/oauth-protected-resource/servers/alpha/mcp", subject=None)
    assert status == 200 and doc["resource"] == stack.url + "/servers/alpha/mcp"
    assert doc["authorization_servers"] == [stack.issuer.issuer]
