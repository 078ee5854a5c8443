"""`/mcp` tools/call (the streaming path, calls.py) honours MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.backends import (  # noqa: F401
    Backend,
    mcp_backend,
    mcp_backend_factory,
    mcp_backend_json,
    mcp_backend_legacy,
)
from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ADMIN, META, modern_headers, rpc

SETTING = "MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES"


def echo(rid: int, text: str) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": "alpha__echo", "arguments": {"text": text}, "_meta": META}}


@pytest.mark.parametrize("which", ["mcp_backend", "mcp_backend_json", "mcp_backend_legacy"])
async def test_an_oversized_answer_is_a_json_rpc_error_naming_the_setting(
    request: pytest.FixtureRequest, tmp_path: Path, pg_dsn: str, which: str
) -> None:
    backend: Backend = request.getfixturevalue(which)  # SSE event, JSON body, handshake-era SSE
    servers = {"alpha": {"url": backend.url}}
    async with gateway_stack(tmp_path, pg_dsn, servers, env={SETTING: "65536"}) as stack:
        hdrs = modern_headers("tools/call", "alpha__echo")
        async with stack.session.post(
            stack.url + "/mcp", json=echo(1, "x" * 100_000),
            headers={**stack.headers(ADMIN), "Accept": "application/json, text/event-stream", **hdrs},
        ) as resp:
            raw = await resp.read()
            # Nothing was relayed before the refusal: one plain JSON-RPC error, not a stream.
            assert resp.content_type == "application/json", raw[:200]
        assert b"xxxx" not in raw and SETTING.encode() in raw and b'"error"' in raw, raw[:300]
        assert b"65536" in raw
        status, answer, _ = await rpc(stack, "/mcp", echo(2, "small"), ADMIN, hdrs)
        assert status == 200 and answer["result"]["content"][0]["text"] == "small", answer
