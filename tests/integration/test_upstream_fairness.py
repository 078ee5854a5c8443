"""One subject's slow calls cannot starve another's on the same backend (REST, /mcp, passthrough
share the per-subject lanes); past its concurrency and queue a subject gets a clear 503."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from gateway.keys import UPSTREAM
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ADMIN, DEV, META, modern_headers, rpc
from tests.integration.pdp_helpers import eventually

ENV = {"MCPGW_GATEWAY_UPSTREAM_SUBJECT_CONCURRENCY": "2", "MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE": "2"}


async def test_a_busy_subject_is_refused_while_another_is_served(tmp_path: Path, pg_dsn: str,
                                                                 mcp_backend: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=ENV) as stack:
        lanes = stack.app[UPSTREAM].lanes

        async def slow() -> tuple[int, Any]:
            status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", subject=DEV,
                                               json={"tool_name": "sleep", "parameters": {"seconds": 1.0}})
            return status, body

        calls = [asyncio.create_task(slow()) for _ in range(4)]  # 2 run, 2 wait

        async def lane_full() -> bool:
            return lanes.running("alpha", DEV) == 2

        await eventually(lane_full)
        status, body = await slow()  # a fifth: past concurrency + queue
        assert status == 503 and "MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE" in str(body), body
        # Another subject is served at once, on REST, /mcp and passthrough, while the first one's lane is full.
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN,
                                           json={"tool_name": "echo", "parameters": {"text": "hi"}})
        assert status == 200 and body["result"]["content"][0]["text"] == "hi"
        echo: dict[str, Any] = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                "params": {"name": "alpha__echo", "arguments": {"text": "hi"}, "_meta": META}}
        status, answer, _ = await rpc(stack, "/mcp", echo, ADMIN, modern_headers("tools/call", "alpha__echo"))
        assert status == 200 and answer["result"]["content"][0]["text"] == "hi"
        echo["params"]["name"] = "echo"
        status, answer, _ = await rpc(stack, "/servers/alpha/mcp", echo, ADMIN, modern_headers("tools/call", "echo"))
        assert status == 200 and answer["result"]["content"][0]["text"] == "hi"
        assert lanes.running("alpha", DEV) == 2  # all of that while the busy lane stayed full
        # The same subject on /mcp is in the same lane: refused too, with the JSON-RPC error.
        status, answer, _ = await rpc(stack, "/mcp", {**echo, "params": {**echo["params"], "name": "alpha__echo"}},
                                      DEV, modern_headers("tools/call", "alpha__echo"))
        assert "MCPGW_GATEWAY_UPSTREAM_SUBJECT_QUEUE" in answer["error"]["message"], answer
        results = await asyncio.gather(*calls)
        assert [s for s, _ in results] == [200] * 4  # the queued ones ran in their turn
        assert len(lanes) == 0
