"""`/mcp` broadcast names run through the same pipeline as REST broadcasts: the same target limit
(MCPGW_GATEWAY_BROADCAST_MAX_TARGETS, checked before anything is forwarded) and the same fan-out metric."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import META, modern_headers, rpc

ECHO = {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": "x"}, "_meta": META}}


@pytest.fixture
async def backends(mcp_backend_factory: Callable[..., Backend]) -> list[Backend]:
    return [mcp_backend_factory("stateless-json", f"limit-{i}") for i in range(2)]


@pytest.fixture
async def limited(tmp_path: Path, pg_dsn: str, backends: list[Backend]) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backends[0].url}, "beta": {"url": backends[1].url}},
                             env={"MCPGW_GATEWAY_BROADCAST_MAX_TARGETS": "1"}) as stack:
        yield stack


async def test_mcp_broadcast_honours_the_target_limit(limited: Stack, backends: list[Backend]) -> None:
    for backend in backends:
        backend.clear()
    status, answer, _ = await rpc(limited, "/mcp", ECHO, headers=modern_headers("tools/call", "echo"))
    assert status == 200 and answer["error"]["code"] == -32602, answer
    assert answer["error"]["message"] == "broadcast would reach 2 servers; the limit is 1", answer
    assert all("tools/call" not in b.methods() for b in backends)
    # The REST broadcast answers the same limit the same way (its own protocol: a 400).
    status, body, _ = await limited.call("POST", "/mcp/invoke-broadcast", json={"tool_name": "echo", "parameters": {}})
    assert status == 400 and body["error"]["message"] == "broadcast would reach 2 servers; the limit is 1", body


async def test_mcp_broadcast_counts_its_fanout(tmp_path: Path, pg_dsn: str, backends: list[Backend]) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": backends[0].url}, "beta": {"url": backends[1].url}},
                             ) as stack:
        status, answer, _ = await rpc(stack, "/mcp", ECHO, headers=modern_headers("tools/call", "echo"))
        assert status == 200 and answer["result"]["isError"] is False, answer
        status, text, _ = await stack.call("GET", "/metrics", subject=None)
        assert 'mcpgw_gateway_broadcast_fanout_bucket{le="2.0"} 1.0' in text


async def test_broadcast_starts_the_slowest_backend_first(tmp_path: Path, pg_dsn: str,
                                                          mcp_backend_factory: Callable[..., Backend]) -> None:
    """Every forwarded call teaches the gateway its backend's latency; a broadcast then starts the
    slowest expected first (gateway/broadcast.py ExpectedLatency), and answers in target order."""
    from gateway.keys import METRICS

    fast = mcp_backend_factory("stateless-json", "order-fast", tools=["echo"])
    slow = mcp_backend_factory("stateless-json", "order-slow", tools=["echo"], delay=0.2)
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": slow.url}, "beta": {"url": fast.url}}) as stack:
        expected = stack.app[METRICS].expected
        assert expected.slowest_first(["beta", "alpha"]) == ["beta", "alpha"]  # nothing known yet
        body = {"tool_name": "echo", "parameters": {"text": "x"}, "mcp_servers": ["beta", "alpha"]}
        status, answer, _ = await stack.call("POST", "/mcp/invoke-broadcast", json=body)
        assert status == 200 and answer["successful"] == 2, answer
        assert list(answer["results"]) == ["beta", "alpha"]  # as named, whatever the start order
        assert expected.slowest_first(["beta", "alpha"]) == ["alpha", "beta"]
