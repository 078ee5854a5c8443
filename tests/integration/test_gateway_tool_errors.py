"""A backend's `isError: true` result is a failure on every many-target entry point, not a success."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

from pathlib import Path

from tests.fixtures.backends import (  # noqa: F401  (fixtures)
    Backend,
    mcp_backend_error,
    mcp_backend_factory,
)
from tests.integration.gateway_harness import gateway_stack

ADMIN = "admin@example.com"


async def test_tool_error_counts_as_failed_on_tools_invoke_and_broadcast(
        tmp_path: Path, pg_dsn: str, mcp_backend_error: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend_error.url}}) as stack:
        status, body, _ = await stack.call("POST", "/tools/fail/invoke", subject=ADMIN, json={"message": "nope"})
        assert status == 200 and body["isError"] is True, body
        assert body["content"][0]["text"] == "'fail' succeeded on 0/1 servers (1 failed)"
        assert body["results"]["alpha"]["isError"] is True  # the backend's own message stays visible
        status, body, _ = await stack.call(
            "POST", "/mcp/invoke-broadcast", subject=ADMIN,
            json={"tool_name": "fail", "parameters": {"message": "nope"}})
        assert status == 200 and (body["successful"], body["failed"]) == (0, 1), body
        status, body, _ = await stack.call(
            "POST", "/mcp/invoke-broadcast", subject=ADMIN, json={"tool_name": "echo", "parameters": {"text": "x"}})
        assert (body["successful"], body["failed"]) == (1, 0), body
