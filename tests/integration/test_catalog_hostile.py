"""Issue 9 (6): one backend listing names the gateway cannot represent (`evil:tool`, `resource/fetch`,
500 characters, NUL, newline) loses those items only; every catalog keeps answering for everyone.
Likewise one backend listing more than the gateway keeps (items or bytes, all pages together): that
backend's list is left out, the others are served. Real SDK backends (both eras), real PDP."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.keys import MCP_STATE
from shared.keys import REGISTRY
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


class PagedBackend:
    """A 2025-era backend whose tools/list is `pages` pages of `per_page` tools; counts the bytes it served."""

    def __init__(self, pages: int, per_page: int, description: str = "") -> None:
        self.pages, self.per_page, self.description = pages, per_page, description
        self.served = 0

    async def post(self, request: web.Request) -> web.Response:
        msg = await request.json()
        method, rid = msg.get("method"), msg.get("id")
        if method == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "paged", "version": "1"}}
            return web.json_response({"jsonrpc": "2.0", "id": rid, "result": result}, headers={"Mcp-Session-Id": "s1"})
        if rid is None:
            return web.Response(status=202)
        if method == "server/discover":
            return web.Response(status=400, text="unknown method")  # not a modern server: initialize
        if method != "tools/list":
            return web.json_response({"jsonrpc": "2.0", "id": rid, "result": {}})
        page = int(((msg.get("params") or {}).get("cursor") or "p0")[1:])
        tools = [{"name": f"t{page}_{i}", "description": self.description, "inputSchema": {"type": "object"}}
                 for i in range(self.per_page)]
        result: dict[str, Any] = {"tools": tools}
        if page + 1 < self.pages:
            result["nextCursor"] = f"p{page + 1}"
        body = json.dumps({"jsonrpc": "2.0", "id": rid, "result": result}).encode()
        self.served += len(body)
        return web.Response(body=body, content_type="application/json")

    async def serve(self, aiohttp_server: Any) -> str:
        """Started on loopback; its /mcp URL."""
        app = web.Application()
        app.router.add_post("/mcp", self.post)

        async def refuse(_: web.Request) -> web.Response:
            return web.Response(status=405)

        app.router.add_route("*", "/mcp", refuse)
        return str((await aiohttp_server(app)).make_url("/mcp"))


def dropped(stack: Stack, server: str) -> float:
    return stack.app[REGISTRY].get_sample_value("mcpgw_gateway_catalog_items_dropped_total",
                                                {"server": server, "kind": "tool"}) or 0.0


async def list_everywhere(stack: Stack) -> set[str]:
    """The admin's /mcp tools/list names, after GET /tools answered 200 too."""
    body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}}
    status, answer, _ = await rpc(stack, "/mcp", body, subject=ADMIN, headers=modern_headers("tools/list"))
    assert status == 200 and "result" in answer, f"/mcp tools/list: {status} {answer}"
    status, listed, _ = await stack.call("GET", "/tools", subject=ADMIN)
    assert status == 200, f"GET /tools: {status} {listed}"
    return names(answer["result"]["tools"])


async def test_a_backend_over_the_item_cap_is_left_out_and_everyone_keeps_the_catalog(
        tmp_path: Path, pg_dsn: str, aiohttp_server: Any, mcp_backend: Backend) -> None:
    # 10,001 tools on one ~400 KB page: past the PDP's max_batch, past the default item cap (10,000).
    many = await PagedBackend(pages=1, per_page=10_001).serve(aiohttp_server)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "many": {"url": many}}) as stack:
        listed = await list_everywhere(stack)
        assert "alpha__echo" in listed
        assert not any(n.startswith("many__") for n in listed)
        assert dropped(stack, "many") >= 10_001


async def test_a_list_longer_than_the_pdps_batch_limit_is_decided_in_chunks(
        tmp_path: Path, pg_dsn: str, aiohttp_server: Any, mcp_backend: Backend) -> None:
    many = await PagedBackend(pages=1, per_page=10_001).serve(aiohttp_server)
    # kept (and listed on one page): the PDP's searches must come in chunks
    env = {"MCPGW_GATEWAY_MCP_MAX_LIST_ITEMS": "20000", "MCPGW_GATEWAY_MCP_PAGE_SIZE": "20000"}
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "many": {"url": many}},
                             env=env) as stack:
        listed = await list_everywhere(stack)
        assert "alpha__echo" in listed and {"many__t0_0", "many__t0_10000"} <= listed


async def test_one_listing_reads_no_more_than_the_call_budget_and_keeps_none_of_it(
        tmp_path: Path, pg_dsn: str, aiohttp_server: Any, mcp_backend: Backend) -> None:
    response_cap, call_budget = 65_536, 262_144
    backend = PagedBackend(pages=50, per_page=400, description="x" * 60)  # ~54 KB pages, 20,000 tools
    paged = await backend.serve(aiohttp_server)
    env = {"MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES": str(response_cap),
           "MCPGW_GATEWAY_MCP_MAX_CALL_BYTES": str(call_budget), "MCPGW_GATEWAY_MCP_MAX_LIST_ITEMS": "100000"}
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "paged": {"url": paged}},
                             env=env) as stack:
        body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": META}}
        status, answer, _ = await rpc(stack, "/mcp", body, subject=ADMIN, headers=modern_headers("tools/list"))
        assert status == 200, answer
        listed = names(answer["result"]["tools"])
        assert "alpha__echo" in listed and not any(n.startswith("paged__") for n in listed)
        held = sum(len(json.dumps(entry[2])) for entry in stack.app[MCP_STATE].lists._entries.values())
        assert backend.served <= call_budget + response_cap, f"one /mcp listing read {backend.served} bytes"
        assert held < call_budget, f"the gateway holds {held} bytes of listed items"
        assert dropped(stack, "paged") > 0
        backend.served = 0
        status, rest, _ = await stack.call("GET", "/tools", subject=ADMIN)
        assert status == 200, rest
        assert backend.served <= call_budget + response_cap, f"one REST listing read {backend.served} bytes"
