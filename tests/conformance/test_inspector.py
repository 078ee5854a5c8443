"""MCP Inspector's CLI through the gateway, authenticated with a bearer token per role."""
# ruff: noqa: F811

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conformance import runner
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack

pytestmark = pytest.mark.skipif(not (runner.INSPECTOR.is_file() and runner.NODE.is_file()) and not runner.REQUIRED,
                                reason="Inspector missing: run `make tools`")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as s:
        yield s


def tool_names(output: str) -> set[str]:
    start = output.index("{")
    return {t["name"] for t in json.loads(output[start:])["tools"]}


async def test_inspector_cli_lists_tools_per_role(stack: Stack, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    auth = f"Authorization: Bearer {stack.token('admin@example.com')}"
    code, out = await runner.run_inspector(home, stack.url + "/mcp", "--transport", "http",
                                           "--method", "tools/list", "--header", auth)
    assert code == 0, out
    assert {"alpha__echo", "alpha__add"} <= tool_names(out)
    code, out = await runner.run_inspector(home, stack.url + "/servers/alpha/mcp", "--transport", "http",
                                           "--method", "tools/call", "--tool-name", "echo",
                                           "--tool-arg", "text=via-inspector", "--header", auth)
    assert code == 0 and "via-inspector" in out, out
    code, out = await runner.run_inspector(home, stack.url + "/mcp", "--transport", "http",
                                           "--method", "tools/list")
    assert code != 0  # no token: 401
