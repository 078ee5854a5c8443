"""MCP endpoints when things go wrong: PDP down, a 2026-only backend, a client that hangs up."""
# ruff: noqa: F811

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvicorn
from aiohttp import web

from shared.keys import AUDIT
from tests.fixtures.backend_server import _bind, build_app
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)


def modern_only(app: Any) -> Any:
    """An SDK app that refuses every request not in 2026-07-28 style (so `initialize` fails)."""

    async def wrapped(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if headers.get("mcp-protocol-version") != "2026-07-28":
                body = json.dumps({"jsonrpc": "2.0", "id": None,
                                   "error": {"code": -32600, "message": "2026-07-28 only"}}).encode()
                await send({"type": "http.response.start", "status": 400,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)

    return wrapped


@pytest.fixture(scope="module")
def modern_backend() -> Iterator[str]:
    sock = _bind()
    config = uvicorn.Config(modern_only(build_app("stateless-json", "modern")), log_level="warning",
                            lifespan="on", ws="none", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/mcp"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, modern_backend: str) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url},
                                                "modern": {"url": modern_backend}}) as s:
        yield s


async def test_handshake_client_is_bridged_to_a_modern_only_backend(stack: Stack) -> None:
    sid = await initialize(stack, "/servers/modern/mcp")
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    status, answer, _ = await rpc(stack, "/servers/modern/mcp", listing, headers=session_headers(sid))
    assert status == 200 and "echo" in {t["name"] for t in answer["result"]["tools"]}, answer
    assert "resultType" not in answer["result"] and "cacheScope" not in answer["result"]
    call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
    status, answer, _ = await rpc(stack, "/servers/modern/mcp", call, headers=session_headers(sid))
    assert status == 200 and answer["result"]["content"][0]["text"] == "x"


async def test_client_disconnect_cancels_the_backend_request(stack: Stack) -> None:
    call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "sleep", "arguments": {"seconds": 3}, "_meta": META}}
    headers = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json",
               **modern_headers("tools/call", "sleep")}
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        async with stack.session.post(stack.url + "/servers/alpha/mcp", json=call, headers=headers,
                                      timeout=aiohttp.ClientTimeout(total=0.3)) as resp:
            await resp.read()

    async def cancelled() -> bool:
        await stack.app[AUDIT].flush()
        text = stack.audit_file.read_text() if stack.audit_file.exists() else ""
        return "client disconnected; backend request cancelled" in text

    deadline = time.monotonic() + 2.0
    while not await cancelled():
        assert time.monotonic() < deadline, "the gateway did not notice the disconnect"
        await asyncio.sleep(0.05)
    assert time.monotonic() - started < 2.5  # well before the 3 s tool would have finished


async def test_pdp_down_denies_and_forwards_nothing(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    with _bind() as dead:
        dead_url = f"http://127.0.0.1:{dead.getsockname()[1]}"
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}},
                             env={"MCPGW_GATEWAY_PDP_URL": dead_url, "MCPGW_GATEWAY_PDP_TIMEOUT": "0.5"}) as stack:
        mcp_backend.clear()
        # Opening a passthrough session is decided too (the right to see the server): refused.
        opening = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                   "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        status, answer, _ = await rpc(stack, "/servers/alpha/mcp", opening)
        assert status == 503 and "fail closed" in answer["error"]["message"]
        assert mcp_backend.methods() == []
        call = {"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "echo", "arguments": {"text": "x"}}}
        status, answer, _ = await rpc(stack, "/servers/alpha/mcp", {**call, "params": {**call["params"], "_meta": META}},
                                      headers=modern_headers("tools/call", "echo"))
        assert status == 503 and "fail closed" in answer["error"]["message"]
        status, answer, _ = await rpc(stack, "/mcp", {**call, "params": {**call["params"], "name": "alpha__echo"}},
                                      headers=session_headers(await initialize(stack, "/mcp")))
        assert status == 503
        assert "tools/call" not in mcp_backend.methods()


async def test_scopes_and_resource_metadata(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    env = {"MCPGW_GATEWAY_MCP_REQUIRED_SCOPES": "mcp:use", "MCPGW_GATEWAY_OAUTH_SCOPES": "mcp:use,openid",
           "MCPGW_GATEWAY_PUBLIC_URL": "https://gw.example.com"}
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env) as stack:
        body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        status, answer, headers = await rpc(stack, "/mcp", body)  # token without the scope
        assert status == 403 and answer["error"]["message"] == "insufficient_scope"
        challenge = headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in challenge and 'scope="mcp:use"' in challenge
        assert 'resource_metadata="https://gw.example.com/.well-known/oauth-protected-resource/mcp"' in challenge
        token = stack.issuer.mint(ADMIN, username=ADMIN, audience="mcpgw", scopes=["mcp:use"])
        status, answer, _ = await rpc(stack, "/mcp", body, subject=None, headers={"Authorization": f"Bearer {token}"})
        assert status == 200 and answer["result"]["serverInfo"]["name"] == "mcpgw"
        for suffix, resource in (("", "https://gw.example.com"), ("/mcp", "https://gw.example.com/mcp")):
            status, doc, _ = await stack.call("GET", "/.well-known/oauth-protected-resource" + suffix, subject=None)
            assert status == 200 and doc["resource"] == resource and doc["scopes_supported"] == ["mcp:use", "openid"]
        status, _, _ = await stack.call("GET", "/.well-known/oauth-protected-resource/elsewhere", subject=None)
        assert status == 404


async def test_oversized_backend_answers_are_refused(tmp_path: Path, pg_dsn: str) -> None:
    """A JSON answer or SSE event past MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES is a clear error, not memory."""
    filler = "x" * 100_000

    async def answer(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        big = request.match_info["kind"] != "small"
        result = {"tools": [{"name": "t", "description": filler if big else "d", "inputSchema": {"type": "object"}}]}
        payload = json.dumps({"jsonrpc": "2.0", "id": body["id"], "result": result})
        if request.match_info["kind"] != "sse":
            return web.Response(text=payload, content_type="application/json")
        out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await out.prepare(request)
        await out.write(f"event: message\ndata: {payload}\n\n".encode())
        return out

    fake = web.Application()
    fake.router.add_post("/{kind}/mcp", answer)
    runner, url = await start_site(fake)
    try:
        backends = {kind: {"url": f"{url}/{kind}/mcp"} for kind in ("small", "json", "sse")}
        async with gateway_stack(tmp_path, pg_dsn, backends,
                                 env={"MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES": "65536"}) as stack:
            listing = {"jsonrpc": "2.0", "id": 4, "method": "tools/list", "params": {"_meta": META}}
            status, answer_, _ = await rpc(stack, "/servers/small/mcp", listing, headers=modern_headers("tools/list"))
            assert status == 200 and answer_["result"]["tools"][0]["name"] == "t"
            status, answer_, _ = await rpc(stack, "/servers/json/mcp", listing, headers=modern_headers("tools/list"))
            assert status == 502 and answer_["id"] == 4
            assert "larger than 65536 bytes (MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES)" in answer_["error"]["message"]
            status, answer_, _ = await rpc(stack, "/servers/sse/mcp", listing, headers=modern_headers("tools/list"))
            assert status == 200 and answer_["id"] == 4  # the stream had started: the error is its last event
            assert "MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES" in answer_["error"]["message"]
    finally:
        await runner.cleanup()
