"""OAuth 2.1 resource-server surface of the MCP endpoints (RFC 9728, RFC 6750): pure builders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.edge import WELL_KNOWN as WELL_KNOWN  # routes/mcp.py serves the metadata there


def metadata_url(base_url: str, resource_path: str = "") -> str:
    """Where the metadata for `base_url + resource_path` lives (path-suffixed form, RFC 9728 §3.1)."""
    return base_url.rstrip("/") + WELL_KNOWN + resource_path


def protected_resource_metadata(base_url: str, resource_path: str, authorization_servers: Sequence[str],
                                scopes: Sequence[str]) -> dict[str, Any]:
    """The RFC 9728 document for one resource of the gateway."""
    doc: dict[str, Any] = {
        "resource": base_url.rstrip("/") + resource_path,
        "authorization_servers": list(authorization_servers),
        "bearer_methods_supported": ["header"],
        "resource_name": "mcpgw MCP gateway",
    }
    if scopes:
        doc["scopes_supported"] = list(scopes)
    return doc


def cache_headers(*, reflected: bool) -> dict[str, str]:
    """Caching of the metadata: 300 s for a configured public URL; never cached when it names the
    request's Host (no `public_url`), so no cache hands one caller's answer to another."""
    if reflected:
        return {"Cache-Control": "no-store", "Vary": "Host"}
    return {"Cache-Control": "max-age=300"}


def challenge(metadata: str, *, error: str | None = None, description: str | None = None,
              scope: Sequence[str] = ()) -> str:
    """A `WWW-Authenticate: Bearer` value naming the metadata URL (and error/scope when given)."""
    params = [f'resource_metadata="{_q(metadata)}"']
    if error:
        params.append(f'error="{_q(error)}"')
    if description:
        params.append(f'error_description="{_q(description)}"')
    if scope:
        params.append(f'scope="{_q(" ".join(scope))}"')
    return "Bearer " + ", ".join(params)


def _q(value: str) -> str:
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return cleaned.replace("\\", "\\\\").replace('"', '\\"')


def missing_scopes(granted: Sequence[str], required: Sequence[str]) -> list[str]:
    """Required scopes the token lacks (empty = enough)."""
    have = set(granted)
    return [s for s in required if s not in have]
