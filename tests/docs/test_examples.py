"""The client configuration examples in docs/examples stay valid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from gateway.registry import parse_servers

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_multi_vendor_servers_file_is_valid() -> None:
    servers, errors = parse_servers(yaml.safe_load((EXAMPLES / "mcp_servers.multi-vendor.yaml").read_text()))
    assert errors == []
    assert {s.auth.method for s in servers.values()} >= {"bearer", "oauth2", "api_key", "basic", "custom", "none"}


@pytest.mark.parametrize("name", ["claude_desktop_config.json", "cursor_mcp.json", "vscode_mcp.json"])
def test_client_configs_point_at_the_gateway_with_a_bearer_token(name: str) -> None:
    text = (EXAMPLES / name).read_text()
    json.loads(text)
    assert "/mcp" in text and "Bearer" in text


def test_readme_shows_how_an_agent_connects() -> None:
    readme = (EXAMPLES.parents[1] / "README.md").read_text()
    for name in ("claude_desktop_config.json", "cursor_mcp.json", "vscode_mcp.json", "mcp_servers.multi-vendor.yaml"):
        assert f"docs/examples/{name}" in readme and (EXAMPLES / name).is_file()
    assert "/servers/{name}/mcp" in readme and "Authorization: Bearer" in readme
