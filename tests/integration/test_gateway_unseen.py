""""Does not exist" and "you may not see it" answer alike on every entry point (and audit alike).

Each pair below sends the same request once naming something that exists but is forbidden to the
caller and once naming something that does not exist; the answers must be the same apart from the
name itself and the decision id.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory, mcp_backend_json  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)
from tests.integration.test_gateway_rest import audit_rows

NOBODY, DEV = "nobody@example.com", "dev@example.com"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, mcp_backend_json: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "beta": {"url": mcp_backend_json.url}},
    ) as s:
        yield s


def same(a: Any, b: Any, names: tuple[str, str]) -> None:
    """Equal once the two names and decision ids are blanked out."""
    def norm(x: Any) -> str:
        text = str(x).replace(names[0], "NAME").replace(names[1], "NAME")
        return re.sub(r"'decision_id': '[^']+'", "'decision_id': 'ID'", text)

    assert norm(a) == norm(b), (a, b)


@pytest.mark.parametrize(
    ("subject", "method", "forbidden", "missing"),
    [
        (NOBODY, "POST", ("/mcp/invoke?mcp_server=alpha", {"tool_name": "echo"}),
         ("/mcp/invoke?mcp_server=ghost", {"tool_name": "echo"})),
        (DEV, "POST", ("/mcp/invoke?mcp_server=beta", {"tool_name": "add"}),
         ("/mcp/invoke?mcp_server=beta", {"tool_name": "nosuch"})),
        (NOBODY, "GET", ("/mcp/server/alpha/info", None), ("/mcp/server/ghost/info", None)),
        (NOBODY, "GET", ("/mcp/list-tools?mcp_server=alpha", None), ("/mcp/list-tools?mcp_server=ghost", None)),
        (NOBODY, "POST", ("/tools/echo/invoke", {}), ("/tools/nosuch/invoke", {})),
    ],
)
async def test_rest_answers_alike(stack: Stack, pg_dsn: str, subject: str, method: str,
                                  forbidden: tuple[str, Any], missing: tuple[str, Any]) -> None:
    answers = []
    for path, body in (forbidden, missing):
        status, answer, _ = await stack.call(method, path, subject=subject, json=body)
        answers.append((status, answer))
    assert answers[0][0] == 403
    names = ("alpha", "ghost") if "ghost" in missing[0] else ("add", "nosuch") if "add" in str(forbidden) else ("echo", "nosuch")
    same(answers[0], answers[1], names)
    rows = await audit_rows(stack, pg_dsn)
    assert [(r["event_type"], r["status"], r["decision"]) for r in rows] == [("policy_violation", "denied", "deny")] * 2


async def test_broadcast_summaries_name_no_hidden_server(stack: Stack) -> None:
    """DEV may call `add` on alpha only: beta (which offers it) is not mentioned unless named."""
    status, body, _ = await stack.call("POST", "/mcp/invoke-broadcast", subject=DEV,
                                       json={"tool_name": "add", "parameters": {"a": 1, "b": 2}})
    assert status == 200 and set(body["results"]) == {"alpha"} and body["errors"] == {}, body
    assert body["total_servers"] == 1 and "beta" not in str(body)
    status, body, _ = await stack.call("POST", "/tools/add/invoke", subject=DEV, json={"a": 1, "b": 2})
    assert status == 200 and "beta" not in str(body), body


def call(method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 7, "method": method, "params": {**params, "_meta": META}}


@pytest.mark.parametrize(
    ("method", "key", "forbidden", "missing"),
    [
        ("tools/call", "name", "alpha__echo", "ghost__echo"),
        ("tools/call", "name", "alpha__echo", "alpha__nosuch"),
        ("tools/call", "name", "echo", "nosuch"),  # unprefixed (broadcast) names
        ("prompts/get", "name", "alpha__greet", "ghost__greet"),
        ("resources/read", "uri", "mcpgw://alpha/note://x", "mcpgw://ghost/note://x"),
        # Not in normal form: refused as such only once the PDP allowed the spelled name.
        ("resources/read", "uri", "mcpgw://alpha/note://x/../y", "mcpgw://ghost/note://x/../y"),
        ("resources/read", "uri", "mcpgw://alpha/note://x/%2e%2e/y", "mcpgw://ghost/note://x/%2e%2e/y"),
        ("resources/read", "uri", "mcpgw://alpha/note://x%2Fy", "mcpgw://ghost/note://x%2Fy"),
    ],
)
async def test_mcp_answers_alike(stack: Stack, pg_dsn: str, method: str, key: str, forbidden: str, missing: str) -> None:
    answers = []
    for name in (forbidden, missing):
        params: dict[str, Any] = {key: name, **({"arguments": {"text": "x"}} if method == "tools/call" else {})}
        status, answer, _ = await rpc(stack, "/mcp", call(method, params), subject=NOBODY,
                                      headers=modern_headers(method, name))
        answers.append((status, answer))
    same(answers[0], answers[1], (forbidden, missing))
    rows = await audit_rows(stack, pg_dsn)
    assert len({(r["event_type"], r["status"], r["decision"]) for r in rows}) == 1, rows


async def test_passthrough_to_unknown_and_forbidden_server_alike(stack: Stack, pg_dsn: str) -> None:
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
    answers = []
    for server in ("alpha", "ghost"):
        status, answer, _ = await rpc(stack, f"/servers/{server}/mcp", init, subject=NOBODY)
        answers.append((status, answer))
        headers = {**stack.headers(NOBODY), "Accept": ACCEPT, "Mcp-Session-Id": "forged",
                   "MCP-Protocol-Version": "2025-11-25"}
        for verb in ("GET", "DELETE"):
            async with stack.session.request(verb, f"{stack.url}/servers/{server}/mcp", headers=headers) as resp:
                answers.append((resp.status, await resp.json()))
    assert answers[0][0] == 404
    for a, b in zip(answers[:3], answers[3:], strict=True):
        same(a, b, ("alpha", "ghost"))
    rows = await audit_rows(stack, pg_dsn)
    assert {(r["event_type"], r["status"], r["decision"]) for r in rows} == {("policy_violation", "denied", "deny")}
    # A caller who may see the server still reaches it.
    status, answer, _ = await rpc(stack, "/servers/alpha/mcp", init, subject="admin@example.com")
    assert status == 200 and answer["result"]["protocolVersion"] == "2025-11-25"


@pytest.mark.parametrize(
    ("method", "params_of"),
    [
        ("resources/subscribe", lambda target: {"uri": f"mcpgw://{target}/note://x"}),
        ("resources/unsubscribe", lambda target: {"uri": f"mcpgw://{target}/note://x"}),
        ("resources/subscribe", lambda target: {"uri": f"mcpgw://{target}/note://x/../y"}),
        ("resources/unsubscribe", lambda target: {"uri": f"mcpgw://{target}/note://x/../y"}),
        ("completion/complete", lambda target: {"ref": {"type": "ref/resource", "uri": f"mcpgw://{target}/r://a/../{{x}}"},
                                                "argument": {"name": "x", "value": ""}}),
        ("completion/complete", lambda target: {"ref": {"type": "ref/prompt", "name": f"{target}__p"},
                                                "argument": {"name": "a", "value": ""}}),
        ("completion/complete", lambda target: {"ref": {"type": "ref/resource", "uri": f"mcpgw://{target}/r://{{x}}"},
                                                "argument": {"name": "x", "value": ""}}),
    ],
)
async def test_mcp_session_methods_answer_alike(stack: Stack, method: str, params_of: Any) -> None:
    sid = await initialize(stack, "/mcp", subject=NOBODY)
    answers = []
    for target in ("alpha", "ghost"):
        body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params_of(target)}
        answers.append(await rpc(stack, "/mcp", body, subject=NOBODY, headers=session_headers(sid)))
    same(answers[0][:2], answers[1][:2], ("alpha", "ghost"))
    if method != "resources/unsubscribe":
        assert answers[0][1]["error"]["code"] == -32003, answers[0]


async def test_a_caller_the_pdp_allows_learns_a_uri_is_not_in_normal_form(stack: Stack) -> None:
    name = "mcpgw://alpha/note://x/../y"
    status, answer, _ = await rpc(stack, "/mcp", call("resources/read", {"uri": name}), subject="admin@example.com",
                                  headers=modern_headers("resources/read", name))
    assert answer["error"]["code"] == -32602 and "normal form" in answer["error"]["message"], answer
