"""Issue 9 (6): one backend listing names the gateway cannot represent (`evil:tool`, `resource/fetch`,
500 characters, NUL, newline) loses those items only; every catalog keeps answering for everyone.
Real SDK backends (both eras), real PDP."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ADMIN,
    DEV,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend,
                mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[Stack]:
    hostile = mcp_backend_factory("hostile", "hostile-catalog")
    legacy = mcp_backend_factory("hostile-legacy", "hostile-catalog-legacy")
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "hostile": {"url": hostile.url},
                                                "old": {"url": legacy.url}},
                             env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"}) as s:
        s.backends = {"hostile": hostile}
        yield s


def names(items: list[dict], key: str = "name") -> set[str]:
    return {i[key] for i in items}


@pytest.mark.parametrize("subject", [ADMIN, DEV])
async def test_aggregated_and_rest_catalogs_survive_a_hostile_backend(stack: Stack, subject: str) -> None:
    sid = await initialize(stack, "/mcp", subject)
    status, answer, _ = await rpc(stack, "/mcp", {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, subject,
                                  session_headers(sid))
    assert status == 200, answer
    listed = names(answer["result"]["tools"])
    assert "alpha__echo" in listed
    if subject == ADMIN:
        assert {"hostile__echo", "old__echo"} <= listed
    assert not any("evil" in n or "fetch" in n or "xxxxxxxx" in n or "nul" in n or "line" in n for n in listed)
    status, body, _ = await stack.call("GET", "/tools", subject)
    assert status == 200 and body["tools"], body
    for server in ("hostile", "old"):
        status, body, _ = await stack.call("GET", f"/mcp/list-tools?mcp_server={server}", subject)
        if subject == ADMIN:
            assert status == 200 and [t["name"] for t in body["tools"]] == ["echo", "route"], body
        else:
            assert status == 200 and body["tools"] == []  # dev may call on alpha and beta only


async def test_passthrough_lists_leave_out_only_the_unrepresentable_items(stack: Stack) -> None:
    sid = await initialize(stack, "/servers/hostile/mcp", ADMIN)
    expected = {"tools/list": ("tools", "name", {"echo", "route"}), "prompts/list": ("prompts", "name", {"open", "secret"}),
                "resources/list": ("resources", "uri", {"file:///public/a.txt", "file:///secret/keys.txt"}),
                "resources/templates/list": ("resourceTemplates", "uriTemplate", {"file:///public/{path}"})}
    for method, (key, field, wanted) in expected.items():
        body = {"jsonrpc": "2.0", "id": 3, "method": method}
        status, answer, _ = await rpc(stack, "/servers/hostile/mcp", body, ADMIN, session_headers(sid))
        assert status == 200 and names(answer["result"][key], field) == wanted, (method, answer)
        for path in ("/servers/hostile/mcp", "/servers/old/mcp"):  # 2026 era; the legacy one through the pool
            status, answer, _ = await rpc(stack, path, {**body, "params": {"_meta": META}}, ADMIN,
                                          modern_headers(method))
            assert status == 200 and names(answer["result"][key], field) == wanted, (path, method, answer)
    status, text, _ = await stack.call("GET", "/metrics", subject=None)
    dropped = [line for line in text.splitlines()
               if line.startswith('mcpgw_gateway_catalog_items_dropped_total{kind="tool",server="hostile"}')]
    assert dropped and float(dropped[0].split()[-1]) >= 5


async def test_a_name_left_out_of_the_catalog_cannot_be_called(stack: Stack) -> None:
    sid = await initialize(stack, "/servers/hostile/mcp", ADMIN)
    stack.backends["hostile"].clear()
    for method, params in (("tools/call", {"name": "evil:tool"}), ("tools/call", {"name": "resource/fetch"}),
                           ("tools/call", {"name": "new\nline"}), ("prompts/get", {"name": "a:b"})):
        body = {"jsonrpc": "2.0", "id": 4, "method": method, "params": params}
        status, answer, _ = await rpc(stack, "/servers/hostile/mcp", body, ADMIN, session_headers(sid))
        assert status == 400 and answer["error"]["code"] == -32602, (params, answer)
    assert stack.backends["hostile"].methods() == []


async def test_mcpgw_list_tools_cli_survives_a_hostile_backend(stack: Stack) -> None:
    """`mcpgw list-tools` as an operator runs it (a subprocess; async, so this loop keeps serving)."""
    root = ROOT
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(root),
           "MCPGW_URL": stack.url, "MCPGW_TOKEN": stack.token(ADMIN)}
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "mcpgw.cli", "list-tools", "hostile", "--json",
                                                env=env, cwd=root, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert [t["name"] for t in json.loads(out)["tools"]] == ["echo", "route"]
