"""A stage added once to the call pipeline runs for every entry point (issue 10).

A refusing stage is registered on a real gateway app; a tool call through each of the six ways in
(REST invoke and broadcast, `/tools/{name}/invoke`, `/mcp` by prefixed and by broadcast name,
passthrough) must reach it after the PDP allowed the call, be refused by it, and reach no backend.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway.calls.admit import Refused
from gateway.calls.call import Call
from gateway.keys import CALL_STAGES
from gateway.registry import ServerConfig
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import META, modern_headers, rpc


class Halted(Refused, status=429, code="halted"):
    """The test stage's refusal."""


class Halt:
    """Refuses every call, remembering which entry point and server it saw."""

    name = "halt"

    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def before_forward(self, request: web.Request, call: Call, server: ServerConfig) -> None:
        self.seen.append((call.entry, server.name))
        raise Halted(f"halted by the test stage on '{server.name}'")


@pytest.fixture
async def halted(tmp_path: Path, pg_dsn: str,
                 mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[tuple[Stack, Halt, list[Backend]]]:
    backends = [mcp_backend_factory("normal", "stage-alpha"), mcp_backend_factory("stateless-json", "stage-beta")]
    stage = Halt()

    def configure(app: web.Application) -> None:
        app[CALL_STAGES] = (*app[CALL_STAGES], stage)

    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backends[0].url}, "beta": {"url": backends[1].url}},
                             configure=configure) as stack:
        for backend in backends:
            backend.clear()
        yield stack, stage, backends


def mcp_call(name: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": name, "arguments": {"text": "x"}, "_meta": META}}


async def test_a_stage_added_once_refuses_on_every_entry_point(halted: tuple[Stack, Halt, list[Backend]]) -> None:
    stack, stage, backends = halted
    args = {"text": "x"}

    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha",
                                       json={"tool_name": "echo", "parameters": args})
    assert (status, body["error"]["code"]) == (429, "halted"), body

    status, body, _ = await stack.call("POST", "/mcp/invoke-broadcast",
                                       json={"tool_name": "echo", "parameters": args, "mcp_servers": ["alpha", "beta"]})
    assert status == 200 and body["successful"] == 0 and set(body["errors"]) == {"alpha", "beta"}, body
    assert all("halted by the test stage" in e for e in body["errors"].values()), body

    status, body, _ = await stack.call("POST", "/tools/echo/invoke", json=args)
    assert status == 200 and body["isError"] is True and set(body["errors"]) == {"alpha", "beta"}, body

    status, answer, _ = await rpc(stack, "/mcp", mcp_call("alpha__echo"),
                                  headers=modern_headers("tools/call", "alpha__echo"))
    assert answer["error"]["code"] == Halted.rpc_code and "halted" in answer["error"]["message"], answer

    status, answer, _ = await rpc(stack, "/mcp", mcp_call("echo"), headers=modern_headers("tools/call", "echo"))
    result = answer["result"]
    assert result["isError"] is True and set(result["structuredContent"]) == {"alpha", "beta"}, answer
    assert all(not r["ok"] and "halted" in r["error"] for r in result["structuredContent"].values()), answer

    status, answer, _ = await rpc(stack, "/servers/beta/mcp", mcp_call("echo"),
                                  headers=modern_headers("tools/call", "echo"))
    assert answer["error"]["code"] == Halted.rpc_code and "halted" in answer["error"]["message"], answer

    assert [e for e, _ in stage.seen] == [
        "rest", "rest_broadcast", "rest_broadcast", "tools", "tools", "mcp", "mcp_broadcast", "mcp_broadcast",
        "passthrough"], stage.seen
    # Refused after the PDP and before forwarding: no backend was asked to run the tool.
    assert all("tools/call" not in b.methods() for b in backends), [b.methods() for b in backends]


async def test_every_entry_point_records_the_backend_latency(tmp_path: Path, pg_dsn: str,
                                                             mcp_backend_factory: Callable[..., Backend]) -> None:
    """The forward is timed by the pipeline, so the backend error-ratio alert sees every way in."""
    servers = {name: {"url": mcp_backend_factory("stateless-json", f"latency-{name}").url}
               for name in ("rest", "mcp", "pass")}
    async with gateway_stack(tmp_path, pg_dsn, servers) as stack:
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=rest",
                                           json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert status == 200, body
        _, answer, _ = await rpc(stack, "/mcp", mcp_call("mcp__echo"), headers=modern_headers("tools/call", "mcp__echo"))
        assert "result" in answer, answer
        _, answer, _ = await rpc(stack, "/servers/pass/mcp", mcp_call("echo"), headers=modern_headers("tools/call", "echo"))
        assert "result" in answer, answer
        _, text, _ = await stack.call("GET", "/metrics", subject=None)
    for server in servers:
        line = f'mcpgw_gateway_backend_call_duration_seconds_count{{operation="call_tool",outcome="ok",server="{server}"}} 1.0'
        assert line in text, server
