"""The gateway's edge against browser-shaped and malformed requests, on a real running gateway.

No-auth mode with an admin dev subject is the worst case: no token stands between a web page and
a tool, so only the browser guard (Origin, JSON content type) and header hygiene hold.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, META, modern_headers
from tests.integration.test_gateway_rest import tool_calls

NO_AUTH = {"MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_DEV_ROLES": "admin"}
ECHO = {"text": "csrf"}
MCP_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "alpha__echo", "arguments": ECHO, "_meta": META}}
PASS_CALL = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": "echo", "arguments": ECHO, "_meta": META}}
# Every POST route that reaches a backend: (path, JSON body, extra headers for a legitimate call).
POST_ROUTES: list[tuple[str, dict[str, Any], dict[str, str]]] = [
    ("/mcp/invoke?mcp_server=alpha", {"tool_name": "echo", "parameters": ECHO}, {}),
    ("/mcp/invoke-broadcast", {"tool_name": "echo", "parameters": ECHO, "mcp_servers": ["alpha"]}, {}),
    ("/tools/echo/invoke", ECHO, {}),
    ("/mcp", MCP_CALL, {"Accept": ACCEPT, **modern_headers("tools/call", "alpha__echo")}),
    ("/servers/alpha/mcp", PASS_CALL, {"Accept": ACCEPT, **modern_headers("tools/call", "echo")}),
]
AIOHTTP_SINGLETONS = frozenset({"content-type", "content-length", "host", "transfer-encoding"})
ROUTE_IDS = [p.split("?")[0] for p, _, _ in POST_ROUTES]


@pytest.fixture
async def open_stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url, "tools": ["echo"]}}, env=NO_AUTH) as s:
        yield s


async def post_raw(stack: Stack, path: str, body: bytes, headers: Any) -> tuple[int, str, str]:
    async with stack.session.post(stack.url + path, data=body, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.text()


def form_body(payload: dict[str, Any]) -> bytes:
    """What `<form enctype="text/plain">` with one field named after the JSON would send."""
    import json

    return json.dumps(payload).encode()


@pytest.mark.parametrize(("path", "payload", "extra"), POST_ROUTES, ids=ROUTE_IDS)
async def test_browser_shaped_posts_never_reach_a_backend(
    open_stack: Stack, mcp_backend: Backend, path: str, payload: dict[str, Any], extra: dict[str, str],
) -> None:
    port = open_stack.url.rsplit(":", 1)[1]
    before = len(tool_calls(mcp_backend))
    attacks: list[tuple[dict[str, str], int]] = [
        # A page on another site: text/plain form POST (no preflight) with its foreign Origin.
        ({"Origin": "https://evil.example", "Content-Type": "text/plain"}, 403),
        # The same with a JSON type (a browser would preflight; the Origin alone refuses it).
        ({"Origin": "https://evil.example", "Content-Type": "application/json"}, 403),
        # DNS rebinding: the foreign name resolves to 127.0.0.1, so Origin and Host agree.
        ({"Origin": f"http://evil.example:{port}", "Host": f"evil.example:{port}",
          "Content-Type": "application/json"}, 403),
        ({"Origin": "null", "Content-Type": "text/plain"}, 403),  # sandboxed iframe, file://
        # No Origin but the browser's own marker of a cross-site request.
        ({"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"}, 403),
    ]
    rest = not path.endswith("/mcp")
    if rest:
        # A cookie-less simple request without Origin (old browser, privacy proxy): form types refused.
        attacks += [({"Content-Type": t}, 415) for t in
                    ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x")]
    for headers, status in attacks:
        got, ctype, text = await post_raw(open_stack, path, form_body(payload), {**extra, **headers})
        assert got == status and ctype == "application/json", (headers, got, text)
        assert ("jsonrpc" in text) == (not rest), text  # MCP clients get a JSON-RPC error body
    # Without Origin, MCP endpoints still demand application/json (their own 415).
    got, _, _ = await post_raw(open_stack, path, form_body(payload), {**extra, "Content-Type": "text/plain"})
    assert got == 415
    assert len(tool_calls(mcp_backend)) == before
    # Control: a non-browser client (no Origin, JSON) and a same-host page both get through.
    for origin in ({}, {"Origin": f"http://127.0.0.1:{port}"}):
        got, _, text = await post_raw(
            open_stack, path, form_body(payload), {**extra, **origin, "Content-Type": "application/json"},
        )
        assert got == 200, text
    assert len(tool_calls(mcp_backend)) == before + 2


async def test_get_routes_refuse_a_foreign_origin_too(open_stack: Stack) -> None:
    for path in ("/mcp/servers", "/tools", "/config", "/health"):
        status, body, _ = await open_stack.call("GET", path, subject=None, headers={"Origin": "https://evil.example"})
        assert status == 403 and body["error"]["code"] == "origin_not_allowed", (path, body)
    # The RFC 9728 metadata stays fetchable by browser-based MCP clients.
    status, _, _ = await open_stack.call(
        "GET", "/.well-known/oauth-protected-resource/mcp", subject=None, headers={"Origin": "https://evil.example"},
    )
    assert status == 200


async def test_allowlisted_origin_passes_and_others_do_not(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    env = {**NO_AUTH, "MCPGW_GATEWAY_MCP_ALLOWED_ORIGINS": "https://console.example"}
    before = len(tool_calls(mcp_backend))
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env) as s:
        call = {"tool_name": "echo", "parameters": ECHO}
        status, _, _ = await s.call("POST", "/mcp/invoke?mcp_server=alpha", subject=None, json=call,
                                    headers={"Origin": "https://console.example"})
        assert status == 200
        port = s.url.rsplit(":", 1)[1]
        for origin in ("https://other.example", f"http://127.0.0.1:{port}"):  # a list replaces same-host
            status, _, _ = await s.call("POST", "/mcp/invoke?mcp_server=alpha", subject=None, json=call,
                                        headers={"Origin": origin})
            assert status == 403, origin
    assert len(tool_calls(mcp_backend)) == before + 1


@pytest.mark.parametrize("name", ["Authorization", "Mcp-Session-Id", "Mcp-Method", "Mcp-Name",
                                  "MCP-Protocol-Version", "Mcp-Param-Region", "Origin", "Content-Type"])
async def test_a_duplicated_security_header_is_refused(stack_auth: Stack, name: str) -> None:
    token = stack_auth.token("admin@example.com")
    first = {"Authorization": f"Bearer {token}", "Origin": f"http://127.0.0.1:{stack_auth.url.rsplit(':', 1)[1]}",
             "Content-Type": "application/json"}
    for path in ("/mcp/invoke?mcp_server=alpha", "/mcp"):
        headers = CIMultiDict(first)
        headers.setdefault(name, "x")
        headers.add(name, headers[name] if name == "Authorization" else "y")
        status, ctype, text = await post_raw(stack_auth, path, b'{"tool_name": "echo"}', headers)
        assert status == 400 and token not in text, (path, text)
        if name.lower() in AIOHTTP_SINGLETONS:
            continue  # aiohttp's parser refuses these itself (its plain-text 400)
        assert ctype == "application/json" and "sent more than once" in text, (path, text)
        assert name.lower() in text.lower()


async def test_two_authorization_headers_even_when_both_valid(stack_auth: Stack) -> None:
    """Two valid tokens of different users: neither wins, the request is refused."""
    headers = CIMultiDict([("Authorization", f"Bearer {stack_auth.token('admin@example.com')}"),
                           ("Authorization", f"Bearer {stack_auth.token('nobody@example.com')}")])
    async with stack_auth.session.get(stack_auth.url + "/mcp/servers", headers=headers) as resp:
        body = await resp.json()
    assert resp.status == 400 and body["error"]["code"] == "duplicate_header"


@pytest.fixture
async def stack_auth(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as s:
        yield s


async def raw_request(url: str, head: bytes) -> bytes:
    """Send a hand-written request; return everything the server answers before closing."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        await writer.drain()
        return await reader.read()
    finally:
        writer.close()


async def test_token_sizes_documented_limit_and_no_token_bytes_in_logs(
    stack_auth: Stack, caplog: pytest.LogCaptureFixture,
) -> None:
    """12 KiB tokens work; 20 KiB gets our JSON 431; beyond aiohttp's ceiling its own 400 —
    and no log record at any level carries token bytes."""
    limit = stack_auth.settings.max_header_bytes
    big = stack_auth.issuer.mint("admin@example.com", username="admin@example.com", audience="mcpgw",
                                 extra={"pad": "p" * 9000})
    assert 8 * 1024 < len(big) < limit
    huge = "eyJ" + "A" * (20 * 1024)
    giant = "eyJ" + "B" * (limit * 4 + 100)
    with caplog.at_level(logging.DEBUG):
        status, body, _ = await stack_auth.call("GET", "/mcp/servers", subject=None,
                                                headers={"Authorization": f"Bearer {big}"})
        assert status == 200 and body["count"] == 1
        status, body, _ = await stack_auth.call("GET", "/mcp/servers", subject=None,
                                                headers={"Authorization": f"Bearer {huge}"})
        assert status == 431 and body["error"]["code"] == "header_too_large"
        assert body["error"]["message"] == f"header Authorization is {len(huge) + 7} bytes; the limit is {limit} bytes"
        answer = await raw_request(stack_auth.url, (
            f"GET /mcp/servers HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {giant}\r\n\r\n").encode())
        # Past the parser's ceiling aiohttp answers itself (plain text, quoting the sender's own
        # line back to it); the point here is that nothing of it reaches a log.
        assert answer.split(b"\r\n", 1)[0].endswith(b" 400 Bad Request"), answer[:100]
    for record in caplog.records:
        text = logging.Formatter().format(record)
        for fragment in (big[-40:], huge[-40:], "BBBBBBBBBB"):
            assert fragment not in text, (record.name, text[:200])
    assert any(r.name == "gateway.http_parser" and "LineTooLong" in r.getMessage() for r in caplog.records)


async def test_oauth_metadata_reflects_host_only_in_development(
    tmp_path: Path, pg_dsn: str, mcp_backend: Backend,
) -> None:
    """Dev (no public URL): built from Host, so `Vary: Host` and never cached. With a public URL:
    the Host header is ignored and the answer may be cached."""
    path = "/.well-known/oauth-protected-resource/mcp"
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as s:
        status, body, headers = await s.call("GET", path, subject=None, headers={"Host": "evil.example"})
        assert status == 200 and body["resource"] == "http://evil.example/mcp"
        assert headers["Vary"] == "Host" and headers["Cache-Control"] == "no-store"
    env = {"MCPGW_GATEWAY_ENVIRONMENT": "production", "MCPGW_GATEWAY_PUBLIC_URL": "https://gw.example.com"}
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=env) as s:
        status, body, headers = await s.call("GET", path, subject=None, headers={"Host": "evil.example"})
        assert status == 200 and body["resource"] == "https://gw.example.com/mcp"
        assert headers["Cache-Control"] == "max-age=300"
        status, _, headers = await s.call("POST", "/mcp", subject=None, json={}, headers={"Host": "evil.example"})
        assert status == 401 and "evil.example" not in headers["WWW-Authenticate"]
