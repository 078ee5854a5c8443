"""JSON shape limits at the gateway's edge, and the audit trail under hostile bodies (real stack).

Reported: a caller with no roles posted `parameters` nested 300 deep; the PDP request failed
(500), the audit batch's COPY and the spool write failed, and another user's allowed call made
just before was lost from the audit trail. Every entry point must now refuse such a body with 400
before the PDP or a backend is asked, and every event of the batch must be stored.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from shared.audit.sanitize import NOTE_KEY
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, audit_rows, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, META, MODERN

DEV, NOBODY = "dev@example.com", "nobody@example.com"


def deep(levels: int) -> str:
    """JSON text of an object nested `levels` deep (built as text: json.dumps would recurse)."""
    return '{"a":' * (levels - 1) + '{"leaf":1}' + "}" * (levels - 1)


def rest_invoke(levels: int) -> tuple[str, str]:
    return "/mcp/invoke?mcp_server=alpha", f'{{"tool_name":"echo","parameters":{{"text":"x","x":{deep(levels)}}}}}'


def rpc_call(levels: int) -> str:
    return (f'{{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{{"name":"echo",'
            f'"arguments":{{"text":"x","x":{deep(levels)}}},"_meta":{json.dumps(META)}}}}}')


# (entry point, path, body builder, speaks JSON-RPC)
ENTRY_POINTS = [
    ("REST /mcp/invoke", lambda n: rest_invoke(n), False),
    ("REST broadcast", lambda n: ("/mcp/invoke-broadcast",
                                  f'{{"tool_name":"echo","mcp_servers":["alpha"],"parameters":{{"x":{deep(n)}}}}}'), False),
    ("REST /tools/{name}/invoke", lambda n: ("/tools/echo/invoke", f'{{"text":"x","x":{deep(n)}}}'), False),
    ("/mcp tools/call", lambda n: ("/mcp", rpc_call(n)), True),
    ("/servers/{name}/mcp passthrough", lambda n: ("/servers/alpha/mcp", rpc_call(n)), True),
]


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}},
                             env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"}) as s:
        mcp_backend.clear()
        yield s


async def post(stack: Stack, path: str, body: str, subject: str) -> tuple[int, Any]:
    headers = {**stack.headers(subject), "Content-Type": "application/json", "Accept": ACCEPT,
               "MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
    async with stack.session.post(stack.url + path, data=body.encode(), headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def pdp_requests(stack: Stack) -> float:
    """Requests the PDP has answered on its AuthZEN routes (from its own /metrics)."""
    async with stack.session.get(stack.pdp_url + "/metrics") as resp:
        text = await resp.text()
    assert "mcpgw_pdp_http_requests_total" in text  # a renamed metric must fail here, not read as 0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mcpgw_pdp_http_requests_total{") and "/access/" in line)


def tool_calls(backend: Backend) -> list[Any]:
    return [r for r in backend.requests if b"tools/call" in (r.body or b"")]


@pytest.mark.parametrize(("entry", "build", "rpc"), ENTRY_POINTS, ids=[e[0] for e in ENTRY_POINTS])
@pytest.mark.parametrize("levels", [300, 2_000])  # 2,000 is beyond orjson's own parse limit
async def test_every_entry_point_refuses_deep_json_before_pdp_and_backend(
    stack: Stack, mcp_backend: Backend, entry: str, build: Any, rpc: bool, levels: int,
) -> None:
    before = await pdp_requests(stack)
    path, body = build(levels)
    status, answer = await post(stack, path, body, DEV)
    assert status == 400, (entry, answer)
    if rpc:
        assert answer["jsonrpc"] == "2.0" and answer["error"]["code"] == -32600
        assert "nested deeper than 64 levels" in answer["error"]["message"]
        assert answer["id"] == (7 if levels == 300 else None)  # unparseable at 2,000: no id to echo
    else:
        assert answer["error"] == {"code": "bad_request", "message": "JSON body nested deeper than 64 levels"}
    assert await pdp_requests(stack) == before
    assert tool_calls(mcp_backend) == []
    rows = await audit_rows(stack, stack.settings.database_url.get())
    refused = rows[-1]
    assert refused["http_status"] == 400 and refused["decision"] is None and refused["subject"] == DEV
    assert "nested deeper than 64 levels" in refused["error"]


async def test_the_bodies_the_limits_allow_still_work(stack: Stack, mcp_backend: Backend) -> None:
    status, answer = await post(stack, *rest_invoke(60), DEV)
    assert status == 200 and answer["success"] is True
    status, answer = await post(stack, "/mcp", rpc_call(60), DEV)
    assert status == 200, answer
    path, body = "/mcp/invoke?mcp_server=alpha", json.dumps({"tool_name": "echo", "parameters": {"text": "y" * 300_000}})
    status, answer = await post(stack, path, body, DEV)
    assert status == 400 and "at most 262144" in answer["error"]["message"]


async def test_reported_scenario_keeps_the_other_users_event(stack: Stack, pg_dsn: str, mcp_backend: Backend) -> None:
    """An allowed call, then a 300- and a 1,000-deep hostile call within the same batch window."""
    status, answer = await post(stack, "/mcp/invoke?mcp_server=alpha",
                                '{"tool_name":"echo","parameters":{"text":"transfer 100"}}', DEV)
    assert status == 200 and answer["success"] is True
    for levels in (300, 1_000):
        status, _ = await post(stack, *rest_invoke(levels), NOBODY)
        assert status == 400
    rows = await audit_rows(stack, stack.settings.database_url.get())
    good = [r for r in rows if r["subject"] == DEV]
    assert len(good) == 1 and good[0]["decision"] == "allow" and good[0]["status"] == "success"
    assert json.loads(good[0]["parameters"]) == {"text": "transfer 100"}
    hostile = [r for r in rows if r["subject"] == NOBODY]
    assert len(hostile) == 2
    for row in hostile:
        assert row["http_status"] == 400 and row["status"] == "error"
        assert "nested deeper than 64 levels" in row["error"]
        assert json.loads(row["extra"])["refused_body"] == "JSON body nested deeper than 64 levels"
    # The JSONL sink has the same three events.
    lines = [json.loads(line) for line in stack.audit_file.read_text().splitlines()]
    assert {e["event_id"] for e in lines} >= {str(r["event_id"]) for r in good + hostile}


async def test_nul_bytes_in_arguments_are_stored_marked(stack: Stack, mcp_backend: Backend) -> None:
    body = json.dumps({"tool_name": "echo", "parameters": {"text": "pay\u0000to mallory"}})
    status, _ = await post(stack, "/mcp/invoke?mcp_server=alpha", body, DEV)
    assert status == 200
    row = (await audit_rows(stack, stack.settings.database_url.get()))[-1]
    assert json.loads(row["parameters"]) == {"text": "pay\\u0000to mallory"}
    assert json.loads(row["extra"])[NOTE_KEY] == {"parameters": ["NUL characters replaced by the text \\u0000"]}


async def test_chunked_body_over_the_size_limit_on_mcp_is_a_jsonrpc_413(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> None:
    """The middleware reads bodies now: an oversized chunked body on /mcp keeps its JSON-RPC answer."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(4):
            yield b" " * 32768

    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}},
                             env={"MCPGW_GATEWAY_MAX_BODY_BYTES": "65536"}) as stack:
        headers = {**stack.headers(DEV), "Content-Type": "application/json", "Accept": ACCEPT}
        async with stack.session.post(stack.url + "/mcp", data=chunks(), headers=headers) as resp:
            answer = await resp.json(content_type=None)
        assert resp.status == 413
        assert answer["error"] == {"code": -32600, "message": "request body too large"}
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", subject=DEV, data=chunks(),
                                           headers={"Content-Type": "application/json"})
        assert status == 413 and body["error"]["code"] == "payload_too_large"
