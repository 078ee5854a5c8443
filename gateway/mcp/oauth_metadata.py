"""OAuth 2.1 resource-server surface of the MCP endpoints (RFC 9728, RFC 6750).

The gateway is the protected resource; the authorization server(s) are the configured issuer(s).
Pure builders here; `routes/mcp.py` serves them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gateway.edge import WELL_KNOWN

__all__ = ["WELL_KNOWN", "cache_headers", "challenge", "metadata_url", "missing_scopes",
           "protected_resource_metadata"]


def metadata_url(base_url: str, resource_path: str = "") -> str:
    """Where the metadata for `base_url + resource_path` lives (path-suffixed form, RFC 9728 §3.1)."""
    return base_url.rstrip("/") + WELL_KNOWN + resource_path


def protected_resource_metadata(
    base_url: str, resource_path: str, authorization_servers: Sequence[str], scopes: Sequence[str],
) -> dict[str, Any]:
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
    """Caching of the metadata: 300 s for a configured public URL; never cached when built from Host.

    Without `public_url` (allowed in development and no-auth mode only, see settings.finalize)
    the document names the Host the request came in on, so it varies by Host and no cache may
    hand one caller's answer to another.
    """
    if reflected:
        return {"Cache-Control": "no-store", "Vary": "Host"}
    return {"Cache-Control": "max-age=300"}


def challenge(
    metadata: str, *, error: str | None = None, description: str | None = None,
    scope: Sequence[str] = (),
) -> str:
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
