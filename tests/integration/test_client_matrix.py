"""Client matrix: the official TypeScript SDK client and the Inspector CLI, through the gateway,
against servers nobody here wrote — `@modelcontextprotocol/server-everything` over Streamable HTTP
(on `/mcp` and passthrough `/servers/everything/mcp`) and `@modelcontextprotocol/server-memory`
launched by the gateway over stdio."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.keys import MCP_STATE
from tests.conformance import runner
from tests.fixtures.server_everything import EVERYTHING, server_everything
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ADMIN

SDK = runner.TOOLS / "@modelcontextprotocol" / "sdk"
MEMORY = runner.TOOLS / "@modelcontextprotocol" / "server-memory" / "dist" / "index.js"
CLIENT = Path(__file__).resolve().parents[1] / "fixtures" / "ts_sdk_client.mjs"
# `make test` sets MCPGW_REQUIRE_NODE_TOOLS=1: there a missing tool is a failure, never a skip.
pytestmark = pytest.mark.skipif(
    not all(p.exists() for p in (runner.NODE, runner.INSPECTOR, SDK / "package.json", EVERYTHING, MEMORY))
    and not runner.REQUIRED,
    reason="Node tools not installed (make tools)",
)

PROGRESS = {"duration": 0.3, "steps": 3}  # server-everything sleeps duration/steps between notifications
ENTITY = {"name": "matrix", "entityType": "test", "observations": ["created by the TypeScript SDK client"]}


@pytest.fixture(scope="module")
def everything_url() -> Iterator[str]:
    with server_everything() as url:
        yield url


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, everything_url: str) -> AsyncIterator[Stack]:
    servers = {
        "everything": {"url": everything_url},
        "memory": {"type": "stdio", "command": str(runner.NODE), "args": [str(MEMORY)],
                   "env": {"MEMORY_FILE_PATH": str(tmp_path / "memory.jsonl")}},
    }
    async with gateway_stack(tmp_path, pg_dsn, servers) as s:
        yield s


async def ts_client(stack: Stack, path: str, plan: dict[str, Any]) -> dict[str, Any]:
    """Run tests/fixtures/ts_sdk_client.mjs against `path` as the admin; its JSON report."""
    proc = await asyncio.create_subprocess_exec(
        str(runner.NODE), str(CLIENT), str(SDK), stack.url + path, json.dumps(plan),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "MCPGW_TOKEN": stack.token(ADMIN), "NO_COLOR": "1"},
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    assert proc.returncode == 0, err.decode(errors="replace")
    return json.loads(out.decode().strip().splitlines()[-1])


def text(result: dict[str, Any]) -> str:
    return "".join(c.get("text", "") for c in result["content"])


def everything_plan(prefix: str) -> dict[str, Any]:
    return {"tool": {"name": f"{prefix}echo", "arguments": {"message": "from-ts-sdk"}},
            "progress": {"name": f"{prefix}trigger-long-running-operation", "arguments": PROGRESS},
            "resources": True,
            "prompt": {"suffix": "simple-prompt", "arguments": {}}}


@pytest.mark.parametrize("path,prefix", [("/mcp", "everything__"), ("/servers/everything/mcp", "")],
                         ids=["aggregated", "passthrough"])
async def test_ts_sdk_client_with_server_everything(stack: Stack, path: str, prefix: str) -> None:
    seen = await ts_client(stack, path, everything_plan(prefix))
    assert seen["protocolVersion"] == "2025-11-25" and seen["sessionId"], seen  # the SDK's latest
    assert {"tools", "resources", "prompts"} <= set(seen["capabilities"]), seen["capabilities"]
    assert {f"{prefix}echo", f"{prefix}trigger-long-running-operation"} <= set(seen["tools"]), seen["tools"]
    assert not seen["call"].get("isError") and "from-ts-sdk" in text(seen["call"]), seen["call"]
    progress = seen["progress"]
    assert "completed" in text(progress["result"]), progress
    assert [(n["progress"], n["total"]) for n in progress["notes"]] == [(1, 3), (2, 3), (3, 3)], progress
    assert seen["resources"] and seen["read"]["contents"], seen.get("read")
    assert seen["read"]["contents"][0]["uri"] == seen["read"]["uri"], seen["read"]
    if path == "/mcp":
        # every backend's resources, in the gateway's namespace (server-memory has one too)
        assert {u.split("/")[2] for u in seen["resources"]} == {"everything", "memory"}, seen["resources"]
        assert all(u.startswith("mcpgw://") for u in seen["resources"]), seen["resources"]
    else:
        assert all(u.startswith("demo://") for u in seen["resources"]), seen["resources"]
    assert seen["prompt"]["name"] == f"{prefix}simple-prompt", seen["prompts"]
    assert seen["prompt"]["messages"][0]["content"]["text"] == "This is a simple prompt without arguments."
    assert "terminateError" not in seen, seen
    # server-memory advertises no prompts: on /mcp it has none to list, which is no backend failure
    assert stack.app[MCP_STATE].metrics.upstream_errors.labels("memory")._value.get() == 0


async def test_ts_sdk_client_with_stdio_server_memory_on_mcp(stack: Stack) -> None:
    plan = {"tool": {"name": "memory__create_entities", "arguments": {"entities": [ENTITY]}}}
    seen = await ts_client(stack, "/mcp", plan)
    assert {"memory__create_entities", "memory__read_graph"} <= set(seen["tools"]), seen["tools"]
    assert not seen["call"].get("isError"), seen["call"]
    assert json.loads(text(seen["call"]))[0]["name"] == "matrix", seen["call"]
    again = await ts_client(stack, "/mcp", {"tool": {"name": "memory__read_graph", "arguments": {}}})
    graph = json.loads(text(again["call"]))
    assert [e["name"] for e in graph["entities"]] == ["matrix"], graph  # the same process, kept alive


async def test_inspector_cli_lists_tools_on_passthrough(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    auth = f"Authorization: Bearer {stack.token(ADMIN)}"

    async def tools(path: str) -> set[str]:
        code, out = await runner.run_inspector(home, stack.url + path, "--transport", "http",
                                               "--method", "tools/list", "--header", auth, limit=30)
        assert code == 0, out
        return {t["name"] for t in json.loads(out[out.index("{"):])["tools"]}

    everything, memory = await asyncio.gather(tools("/servers/everything/mcp"), tools("/servers/memory/mcp"))
    assert {"echo", "trigger-long-running-operation", "get-sum"} <= everything, everything
    assert {"create_entities", "read_graph"} <= memory, memory
