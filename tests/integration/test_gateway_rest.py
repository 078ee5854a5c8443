"""The gateway REST API end to end: real issuer, PDP, SDK backends, Postgres audit rows."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from mcpgw.client.takeup import file_version
from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend,
    mcp_backend_500,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_slow,
)
from tests.integration.gateway_harness import (
    Stack,
    audit_rows,
    caller_request_id,
    gateway_stack,
    start_site,
)

ADMIN, DEV, NOBODY = "admin@example.com", "dev@example.com", "nobody@example.com"


def tool_calls(backend: Backend, tool: str | None = None) -> list[dict[str, Any]]:
    """tools/call requests a backend received (optionally for one tool)."""
    out = []
    for r in backend.requests:
        try:
            body = r.json()
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("method") == "tools/call":
            if tool is None or body["params"]["name"] == tool:
                out.append(body)
    return out


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn,
        {
            "alpha": {"url": mcp_backend.url, "tags": ["logs"]},
            "beta": {"url": mcp_backend_json.url, "tags": ["logs"]},
        },
        env={"MCPGW_GATEWAY_MAX_BODY_BYTES": "65536"},
    ) as s:
        mcp_backend.clear()
        mcp_backend_json.clear()
        yield s


async def test_public_routes_need_no_token(stack: Stack) -> None:
    status, body, headers = await stack.call("GET", "/", subject=None)
    assert status == 200 and body["auth_enabled"] is True and "invoke_broadcast" in body["endpoints"]
    assert headers["X-Request-ID"]
    status, body, _ = await stack.call("GET", "/health", subject=None)
    assert status == 200 and body["status"] == "healthy" and body["servers"] == 2
    # The servers file's version as `mcpgw register-mcp` computes it; never its raw mtime or size.
    servers_file = stack.settings.servers_file
    assert servers_file is not None and body["servers_file_version"] == file_version(servers_file)
    st = servers_file.stat()
    assert str(st.st_mtime_ns) not in json.dumps(body) and f":{st.st_size}" not in json.dumps(body), body
    status, text, _ = await stack.call("GET", "/metrics", subject=None)
    assert status == 200 and "mcpgw_gateway_http_requests_total" in text


async def test_config_requires_auth_and_masks_secrets(stack: Stack) -> None:
    status, body, headers = await stack.call("GET", "/config", subject=None)
    assert status == 401 and body["error"]["code"] == "invalid_request"
    assert headers["WWW-Authenticate"].startswith("Bearer")
    status, body, _ = await stack.call("GET", "/config")  # a valid token without an admin role
    assert status == 403 and body["error"]["message"] == "requires one of the roles: admin", body
    admin = {"Authorization": f"Bearer {stack.token(ADMIN, roles=('admin',))}"}
    status, body, _ = await stack.call("GET", "/config", subject=None, headers=admin)
    assert status == 200 and body["database_url"] == "***" and body["auth_mode"] == "jwt"
    assert body["no_auth"] is False and body["audience"] == "mcpgw"


async def test_auth_failures_are_401_and_audited_without_the_token(stack: Stack, pg_dsn: str) -> None:
    expired = stack.issuer.mint(ADMIN, audience="mcpgw", expires_in=-3600)
    wrong_aud = stack.issuer.mint(ADMIN, audience="someone-else")
    for header in (f"Bearer {expired}", f"Bearer {wrong_aud}", "Bearer not.a.jwt", "Basic abc"):
        status, body, headers = await stack.call("GET", "/mcp/servers", subject=None, headers={"Authorization": header})
        assert status == 401, header
        assert headers["WWW-Authenticate"].startswith("Bearer ") and "error=" in headers["WWW-Authenticate"]
        assert expired not in str(body)
    rows = await audit_rows(stack, pg_dsn)
    assert [r["event_type"] for r in rows] == ["authentication"] * 4
    assert {r["status"] for r in rows} == {"denied"} and {r["http_status"] for r in rows} == {401}
    dumped = str([dict(r) for r in rows]) + stack.audit_file.read_text()
    assert expired not in dumped and wrong_aud not in dumped and "not.a.jwt" not in dumped


async def test_list_servers_is_filtered_by_policy(stack: Stack) -> None:
    status, body, _ = await stack.call("GET", "/mcp/servers")
    assert status == 200 and [s["name"] for s in body["servers"]] == ["alpha", "beta"] and body["count"] == 2
    assert set(body["servers"][0]) == {"name", "url", "type", "enabled", "description", "tags"}
    status, body, _ = await stack.call("GET", "/mcp/servers", subject=NOBODY)
    assert status == 200 and body == {"servers": [], "count": 0}


async def test_server_info(stack: Stack) -> None:
    status, body, _ = await stack.call("GET", "/mcp/server/alpha/info", subject=DEV)
    assert status == 200 and body["name"] == "alpha" and body["tags"] == ["logs"]
    status, body, _ = await stack.call("GET", "/mcp/server/alpha/info", subject=NOBODY)
    assert status == 403 and body["error"]["code"] == "forbidden" and body["error"]["message"]
    status, body, _ = await stack.call("GET", "/mcp/server/nope/info")
    assert status == 404 and "nope" in body["error"]["message"]


async def test_list_tools_shows_only_invocable_tools(stack: Stack) -> None:
    status, body, _ = await stack.call("GET", "/mcp/list-tools?mcp_server=alpha")
    names = {t["name"] for t in body["tools"]}
    assert status == 200 and body["mcp_server"] == "alpha" and body["count"] == len(body["tools"])
    assert {"echo", "add"} <= names and "delete_records" not in names  # the deny rule applies
    status, body, _ = await stack.call("GET", "/mcp/list-tools?mcp_server=beta", subject=DEV)
    assert status == 200 and [t["name"] for t in body["tools"]] == ["echo"]


async def test_invoke_allowed_is_forwarded_and_audited(stack: Stack, pg_dsn: str, mcp_backend: Backend) -> None:
    token = stack.token(DEV)
    status, body, headers = await stack.call(
        "POST", "/mcp/invoke?mcp_server=alpha", subject=None,
        headers={"Authorization": f"Bearer {token}", "X-Request-ID": "req-42"},
        json={"tool_name": "add", "parameters": {"a": 2, "b": 3}},
    )
    assert status == 200, body
    assert body["success"] is True and body["tool_name"] == "add" and body["mcp_server"] == "alpha"
    assert body["result"]["content"][0]["text"] == "5" and body["execution_time_ms"] > 0
    call = tool_calls(mcp_backend, "add")
    assert len(call) == 1 and call[0]["params"]["arguments"] == {"a": 2, "b": 3}
    assert all(token not in str(r.headers) for r in mcp_backend.requests)  # never forwarded
    rows = await audit_rows(stack, pg_dsn)
    row = rows[-1]
    assert (row["event_type"], row["status"], row["decision"], row["http_status"]) == ("mcp_request", "success", "allow", 200)
    assert (row["subject"], row["mcp_server"], row["tool"]) == (DEV, "alpha", "add")
    # The request id is ours (sent back in X-Request-ID); the caller's is kept apart, never as ours.
    assert row["request_id"] == headers["X-Request-ID"] != "req-42" and len(row["request_id"]) == 32
    assert caller_request_id(row) == "req-42"
    assert row["decision_id"] and row["policy_version"]


async def test_invoke_denied_is_403_and_never_forwarded(stack: Stack, pg_dsn: str, mcp_backend: Backend) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN,
        json={"tool_name": "delete_records", "parameters": {"table": "users", "password": "hunter2"}},
    )
    assert status == 403 and "Block deletes" in body["error"]["message"]
    status, _, _ = await stack.call("POST", "/mcp/invoke?mcp_server=beta", subject=DEV, json={"tool_name": "add", "parameters": {}})
    assert status == 403
    assert tool_calls(mcp_backend) == []
    rows = await audit_rows(stack, pg_dsn)
    assert [(r["event_type"], r["status"], r["decision"]) for r in rows] == [("policy_violation", "denied", "deny")] * 2
    assert "hunter2" not in str(rows[0]["parameters"]) and "hunter2" not in stack.audit_file.read_text()
    lines = stack.audit_file.read_text().splitlines()
    assert len(lines) == 2 and '"status":"denied"' in lines[0] and '"tool_name":"delete_records"' in lines[0]


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "fragment"),
    [
        ("/mcp/invoke?mcp_server=nope", {"json": {"tool_name": "echo"}}, 404, "unknown MCP server 'nope'"),
        ("/mcp/invoke", {"json": {"tool_name": "echo"}}, 400, "mcp_server"),
        ("/mcp/invoke?mcp_server=alpha", {"data": b"{not json", "headers": {"Content-Type": "application/json"}}, 400, "malformed JSON"),
        ("/mcp/invoke?mcp_server=alpha", {"json": [1, 2]}, 400, "JSON object"),
        ("/mcp/invoke?mcp_server=alpha", {"json": {"parameters": {}}}, 400, "tool_name"),
        ("/mcp/invoke?mcp_server=alpha", {"json": {"tool_name": "echo", "parameters": "x"}}, 400, "parameters"),
        ("/mcp/invoke-broadcast", {"json": {"tool_name": "echo", "tags": "logs"}}, 400, "tags"),
        ("/mcp/invoke?mcp_server=alpha", {"data": b"{" + b" " * 100_000 + b"}"}, 413, "exceeds"),
        ("/mcp/no-such-route", {}, 404, "no such endpoint"),
    ],
)
async def test_bad_input(stack: Stack, mcp_backend: Backend, path: str, kwargs: dict, status: int, fragment: str) -> None:
    got, body, _ = await stack.call("POST", path, **kwargs)
    assert got == status, body
    assert set(body) == {"error"} and fragment in body["error"]["message"]
    assert tool_calls(mcp_backend) == []


async def test_chunked_body_over_limit_is_413(stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 32768

    status, body, _ = await stack.call(
        "POST", "/mcp/invoke?mcp_server=alpha", data=chunks(), headers={"Content-Type": "application/json"},
    )
    assert status == 413 and body["error"]["code"] == "payload_too_large"


async def test_tools_aggregated_and_invoked_everywhere(stack: Stack, mcp_backend: Backend, mcp_backend_json: Backend) -> None:
    status, body, _ = await stack.call("GET", "/tools", subject=DEV)
    tools = {t["name"]: t for t in body["tools"]}
    assert status == 200 and tools["echo"]["_meta"]["mcpgw/servers"] == ["alpha", "beta"]
    assert "add" in tools and tools["add"]["_meta"]["mcpgw/servers"] == ["alpha"]
    assert "delete_records" not in tools and "inputSchema" in tools["echo"]
    status, body, _ = await stack.call("POST", "/tools/echo/invoke", subject=DEV, json={"text": "hi"})
    assert status == 200 and body["isError"] is False
    assert body["content"][0] == {"type": "text", "text": "'echo' succeeded on 2/2 servers"}
    assert set(body["results"]) == {"alpha", "beta"}
    assert len(tool_calls(mcp_backend, "echo")) == 1 and len(tool_calls(mcp_backend_json, "echo")) == 1
    status, body, _ = await stack.call("POST", "/tools/delete_records/invoke", subject=ADMIN, json={"table": "t"})
    assert status == 403 and tool_calls(mcp_backend, "delete_records") == []
    status, body, _ = await stack.call("POST", "/tools/no_such_tool/invoke", subject=ADMIN)
    assert status == 404


async def test_broadcast_denied_targets_not_called(stack: Stack, mcp_backend: Backend, mcp_backend_json: Backend) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=DEV,
        json={"tool_name": "add", "parameters": {"a": 1, "b": 1}, "mcp_servers": ["alpha", "beta", "ghost"]},
    )
    assert status == 200, body
    assert (body["total_servers"], body["successful"], body["failed"]) == (3, 1, 2)
    assert body["results"]["alpha"]["content"][0]["text"] == "2"
    # "ghost" does not exist, "beta" is forbidden: the caller named both and cannot tell them apart.
    assert body["errors"]["beta"].startswith("denied: ") and body["errors"]["ghost"] == body["errors"]["beta"]
    assert tool_calls(mcp_backend_json) == [] and len(tool_calls(mcp_backend, "add")) == 1


async def test_backend_failure_is_502(tmp_path: Path, pg_dsn: str, mcp_backend_500: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"broken": {"url": mcp_backend_500.url}}) as s:
        status, body, _ = await s.call("POST", "/mcp/invoke?mcp_server=broken", json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 502 and body["error"]["code"] == "upstream_error"


@pytest.fixture
async def hung_url() -> AsyncIterator[str]:
    """A backend URL whose every request hangs until the test ends (then answers 500)."""
    release = asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return web.Response(status=500)

    hung = web.Application()
    hung.router.add_route("*", "/mcp", hang)
    runner, url = await start_site(hung)
    try:
        yield url + "/mcp"
    finally:
        release.set()
        await runner.cleanup()


async def test_broadcast_with_hung_backend_returns_on_time(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, hung_url: str) -> None:
    async with gateway_stack(
        tmp_path, pg_dsn,
        {"alpha": {"url": mcp_backend.url, "tags": ["t"]}, "hung": {"url": hung_url, "tags": ["t"], "timeout": 60}},
        env={"MCPGW_GATEWAY_BROADCAST_DEADLINE": "1.0"},
    ) as s:
        start = time.perf_counter()
        status, body, _ = await s.call("POST", "/mcp/invoke-broadcast", json={"tool_name": "echo", "parameters": {"text": "x"}, "tags": ["t"]})
        elapsed = time.perf_counter() - start
        assert status == 200 and elapsed < 3.0
        assert body["successful"] == 1 and "alpha" in body["results"]
        assert "deadline" in body["errors"]["hung"]


async def test_pdp_down_fails_closed(stack: Stack, mcp_backend: Backend) -> None:
    await stack.pdp.cleanup()
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", json={"tool_name": "echo", "parameters": {"text": "x"}})
    assert status == 503 and body["error"]["code"] == "pdp_unavailable"
    status, _, _ = await stack.call("GET", "/mcp/servers")
    assert status == 503
    assert tool_calls(mcp_backend) == []


async def test_no_auth_mode_is_explicit_and_grants_nothing(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env={"MCPGW_GATEWAY_NO_AUTH": "true"}) as s:
            status, body, _ = await s.call("GET", "/config", subject=None)
            assert status == 403  # the dev subject holds no admin role either
            status, body, _ = await s.call("GET", "/mcp/servers", subject=None)
            assert status == 200 and body["count"] == 0  # subject "dev" has no roles
    assert any("AUTHENTICATION IS DISABLED" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


async def test_broadcast_probe_and_calls_share_one_deadline(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, hung_url: str) -> None:
    """Without names or tags, servers lacking a tools hint are asked first; a hung one must not
    stretch the broadcast past its deadline (probes get half of it, calls the rest)."""
    async with gateway_stack(
        tmp_path, pg_dsn,
        {"alpha": {"url": mcp_backend.url}, "hung": {"url": hung_url, "timeout": 60}},
        env={"MCPGW_GATEWAY_BROADCAST_DEADLINE": "1.0"},
    ) as s:
        start = time.perf_counter()
        status, body, _ = await s.call("POST", "/mcp/invoke-broadcast", json={"tool_name": "echo", "parameters": {"text": "x"}})
        elapsed = time.perf_counter() - start
        assert status == 200 and body["successful"] == 1 and "alpha" in body["results"], body
        assert elapsed < 1.0  # the whole broadcast, probes included, within its deadline


async def test_metrics_named_in_the_issue_are_exposed(stack: Stack) -> None:
    """Requests by route/status, latency, backend latency by server, PDP latency and cache hits,
    JWKS refreshes and broadcast fan-out all appear on /metrics after real traffic."""
    for _ in range(2):  # the second call hits the decision cache
        status, _, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 200
    status, _, _ = await stack.call("POST", "/mcp/invoke-broadcast", json={"tool_name": "echo", "parameters": {"text": "y"}, "tags": ["logs"]})
    assert status == 200
    status, text, _ = await stack.call("GET", "/metrics", subject=None)
    assert status == 200
    expected = [
        'mcpgw_gateway_http_requests_total{method="POST",route="/mcp/invoke",status="200"} 2.0',
        'mcpgw_gateway_http_request_duration_seconds_bucket{le="0.005",method="POST",route="/mcp/invoke"}',
        'mcpgw_gateway_backend_call_duration_seconds_count{operation="call_tool",outcome="ok",server="alpha"}',
        'mcpgw_gateway_pdp_request_duration_seconds_count{endpoint="/access/v1/evaluation"}',
        'mcpgw_gateway_pdp_cache_total{result="hit"}',
        'mcpgw_gateway_jwks_refreshes_total{outcome="ok"} 1.0',
        "mcpgw_gateway_broadcast_fanout_bucket{le=\"2.0\"} 1.0",
    ]
    missing = [line for line in expected if line not in text]
    assert missing == [], missing


async def test_body_credential_reaches_only_its_backend_never_audit(
    tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend
) -> None:
    secret_file = tmp_path / "alpha.key"
    secret_file.write_text("body-secret-123\n")
    auth = {"method": "api_key", "location": "body", "name": "api_key", "credential_ref": f"file://{secret_file}"}
    async with gateway_stack(
        tmp_path, pg_dsn,
        {"alpha": {"url": mcp_backend.url, "tags": ["logs"], "auth": auth}, "beta": {"url": mcp_backend_json.url, "tags": ["logs"]}},
    ) as s:
        mcp_backend.clear()
        mcp_backend_json.clear()
        params = {"text": "hello"}
        status, body, _ = await s.call("POST", "/mcp/invoke-broadcast", json={"tool_name": "echo", "parameters": params, "tags": ["logs"]})
        assert status == 200 and body["successful"] == 2, body
        status, body, _ = await s.call("POST", "/mcp/invoke?mcp_server=alpha", json={"tool_name": "echo", "parameters": params})
        assert status == 200
        assert [c["params"]["arguments"] for c in tool_calls(mcp_backend, "echo")] == [{"text": "hello", "api_key": "body-secret-123"}] * 2
        assert [c["params"]["arguments"] for c in tool_calls(mcp_backend_json, "echo")] == [{"text": "hello"}]
        assert all("body-secret-123" not in r.body.decode() for r in mcp_backend_json.requests)
        rows = await audit_rows(s, pg_dsn)
        assert len(rows) == 2 and all(r["parameters"] in ({"text": "hello"}, '{"text": "hello"}') for r in rows)
        assert "body-secret-123" not in str([dict(r) for r in rows]) + s.audit_file.read_text()


async def test_slow_backend_is_504(tmp_path: Path, pg_dsn: str, mcp_backend_slow: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"slow": {"url": mcp_backend_slow.url, "timeout": 0.2}}) as s:
        status, body, _ = await s.call("POST", "/mcp/invoke?mcp_server=slow", json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 504 and body["error"]["code"] == "upstream_timeout", body
        rows = await audit_rows(s, pg_dsn)
        assert (rows[-1]["event_type"], rows[-1]["status"], rows[-1]["http_status"]) == ("mcp_request", "error", 504)
