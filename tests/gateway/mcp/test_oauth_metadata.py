"""gateway.mcp.oauth_metadata: RFC 9728 documents and Bearer challenges."""

from __future__ import annotations

import pytest

from gateway.mcp import oauth_metadata as om


def test_metadata_document() -> None:
    doc = om.protected_resource_metadata("https://gw.example/", "/mcp", ["https://idp.example/realms/x"], ["mcp"])
    assert doc["resource"] == "https://gw.example/mcp"
    assert doc["authorization_servers"] == ["https://idp.example/realms/x"]
    assert doc["scopes_supported"] == ["mcp"] and doc["bearer_methods_supported"] == ["header"]
    assert "scopes_supported" not in om.protected_resource_metadata("https://gw", "", ["https://i"], [])


def test_metadata_url_path_suffixed() -> None:
    assert om.metadata_url("https://gw/", "/mcp") == "https://gw/.well-known/oauth-protected-resource/mcp"
    assert om.metadata_url("https://gw") == "https://gw/.well-known/oauth-protected-resource"


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, 'Bearer resource_metadata="https://gw/m"'),
        ({"error": "insufficient_scope", "scope": ["mcp", "tools"]},
         'Bearer resource_metadata="https://gw/m", error="insufficient_scope", scope="mcp tools"'),
        ({"error": "invalid_token", "description": 'bad "x"\n'},
         'Bearer resource_metadata="https://gw/m", error="invalid_token", error_description="bad \\"x\\""'),
    ],
)
def test_challenge(kwargs: dict, expected: str) -> None:
    assert om.challenge("https://gw/m", **kwargs) == expected


def test_missing_scopes() -> None:
    assert om.missing_scopes(["a", "b"], ["a"]) == []
    assert om.missing_scopes(["a"], ["a", "c"]) == ["c"]
