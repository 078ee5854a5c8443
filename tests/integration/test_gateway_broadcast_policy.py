"""Broadcast discovery decides before it probes; probe failures are reported; 403 bodies carry the decision."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.keys import UPSTREAM
from mcpgw.client.errors import explain_http_error
from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend,
    mcp_backend_500,
    mcp_backend_factory,
    mcp_backend_json,
)
from tests.integration.gateway_harness import POLICY, Stack, gateway_stack

ADMIN, DEV, NOBODY = "admin@example.com", "dev@example.com", "nobody@example.com"
# The harness policy, plus: developers may call any tool on "broken" (whose tool list fails).
POLICY_BROKEN = POLICY.replace(
    '      - resource: "mcp:beta:echo"\n',
    '      - resource: "mcp:beta:echo"\n        actions: ["invoke_tool"]\n      - resource: "mcp:broken:*"\n',
)


@pytest.fixture
async def stack(
    tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend, mcp_backend_500: Backend
) -> AsyncIterator[Stack]:
    # No `tools` hints: every target has to be found by asking the backend.
    async with gateway_stack(
        tmp_path, pg_dsn,
        {"alpha": {"url": mcp_backend.url}, "beta": {"url": mcp_backend_json.url}, "broken": {"url": mcp_backend_500.url}},
        policy=POLICY_BROKEN,
    ) as s:
        for backend in (mcp_backend, mcp_backend_json, mcp_backend_500):
            backend.clear()
        yield s


def test_policy_grants_broken() -> None:
    assert '"mcp:broken:*"' in POLICY_BROKEN and POLICY_BROKEN.count('actions: ["invoke_tool"]') == 3


async def test_denied_server_is_not_even_probed(
    stack: Stack, mcp_backend: Backend, mcp_backend_json: Backend, mcp_backend_500: Backend
) -> None:
    # DEV may call add on alpha and broken, not on beta: beta must receive no request at all.
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=DEV, json={"tool_name": "add", "parameters": {"a": 2, "b": 2}}
    )
    assert status == 200, body
    assert mcp_backend_json.requests == []
    assert body["results"]["alpha"]["content"][0]["text"] == "4"
    assert body["errors"]["broken"].startswith("could not list tools: ")  # reported, not dropped
    assert "beta" not in body["errors"]  # not known to offer the tool; not asked
    assert (body["total_servers"], body["successful"], body["failed"]) == (2, 1, 1)
    assert mcp_backend_500.requests  # the permitted server was asked


async def test_permitted_servers_are_probed_and_called(stack: Stack, mcp_backend_json: Backend) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=DEV, json={"tool_name": "echo", "parameters": {"text": "hi"}}
    )
    assert status == 200, body
    assert set(body["results"]) == {"alpha", "beta"} and set(body["errors"]) == {"broken"}
    assert mcp_backend_json.requests


async def test_a_second_broadcast_probes_fresh_catalogs_without_asking_the_backends(
    stack: Stack, mcp_backend: Backend, mcp_backend_json: Backend, mcp_backend_500: Backend
) -> None:
    pool = stack.app[UPSTREAM]
    assert pool.cached_catalog("alpha") is None  # nothing listed yet
    first = await stack.call("POST", "/mcp/invoke-broadcast", subject=DEV, json={"tool_name": "echo", "parameters": {"text": "1"}})
    assert first[0] == 200 and set(first[1]["results"]) == {"alpha", "beta"}, first
    assert pool.cached_catalog("alpha") is not None and pool.cached_catalog("broken") is None
    for backend in (mcp_backend, mcp_backend_json, mcp_backend_500):
        backend.clear()
    status, body, _ = await stack.call("POST", "/mcp/invoke-broadcast", subject=DEV, json={"tool_name": "echo", "parameters": {"text": "2"}})
    assert status == 200 and set(body["results"]) == {"alpha", "beta"}, body
    assert body["errors"]["broken"].startswith("could not list tools: ")  # not cached: asked again, failed again
    for backend in (mcp_backend, mcp_backend_json):  # fresh catalogs: only the calls went out
        assert not any(b"tools/list" in r.body for r in backend.requests), backend.requests
    assert mcp_backend_500.requests


async def test_everyone_denied_contacts_nobody(
    stack: Stack, mcp_backend: Backend, mcp_backend_json: Backend, mcp_backend_500: Backend
) -> None:
    # One uniform 403, naming no server the caller may not use (it used to list them all).
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=NOBODY, json={"tool_name": "echo", "parameters": {"text": "x"}}
    )
    assert status == 403 and body["error"]["decision_id"], body
    assert not any(n in str(body) for n in ("alpha", "beta", "broken")), body
    status, body, _ = await stack.call("POST", "/tools/echo/invoke", subject=NOBODY, json={"text": "x"})
    assert status == 403 and body["error"]["decision_id"]
    assert mcp_backend.requests == mcp_backend_json.requests == mcp_backend_500.requests == []


async def test_no_server_offers_the_tool_is_404(stack: Stack) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=ADMIN, json={"tool_name": "no_such_tool", "parameters": {}}
    )
    # broken's list failed, so it may offer the tool: reported, not a 404.
    assert status == 200 and set(body["errors"]) == {"broken"}, body


async def test_named_targets_keep_their_behaviour(stack: Stack, mcp_backend_json: Backend) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke-broadcast", subject=DEV,
        json={"tool_name": "add", "parameters": {"a": 1, "b": 1}, "mcp_servers": ["alpha", "beta"]},
    )
    assert status == 200 and body["errors"]["beta"].startswith("denied: ") and "alpha" in body["results"]
    assert mcp_backend_json.requests == []


async def test_403_body_names_decision_and_statement(stack: Stack) -> None:
    status, body, _ = await stack.call(
        "POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN, json={"tool_name": "delete_records", "parameters": {}}
    )
    assert status == 403
    err = body["error"]
    assert err["code"] == "forbidden" and "Block deletes" in err["message"]
    assert isinstance(err["decision_id"], str) and len(err["decision_id"]) >= 8
    assert err["policy_version"]
    assert err["statement"]["kind"] == "rule" and err["statement"]["name"] == "Block deletes"
    # What the CLI prints for it.
    text = str(explain_http_error(403, body, stack.url))
    assert f"decision_id: {err['decision_id']}" in text and "name=Block deletes" in text
    # Server-level denials too (default deny statement).
    status, body, _ = await stack.call("GET", "/mcp/server/alpha/info", subject=NOBODY)
    assert status == 403 and body["error"]["decision_id"] and body["error"]["statement"]["kind"] == "default"
