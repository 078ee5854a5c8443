"""HTTP edge rules the middlewares and the MCP endpoints share (pure; the floor both stand on).

Kept below both so neither reaches into the other: which paths are the JSON-RPC endpoints, where
the RFC 9728 metadata lives, and which browser Origins may talk to the gateway.
"""

from __future__ import annotations

from collections.abc import Sequence

# OAuth protected-resource metadata (RFC 9728): public, it tells clients where to get a token.
WELL_KNOWN = "/.well-known/oauth-protected-resource"


def is_mcp_path(path: str) -> bool:
    """True for `/mcp` and `/servers/{name}/mcp` (the JSON-RPC endpoints)."""
    return path == "/mcp" or (path.startswith("/servers/") and path.endswith("/mcp"))


def origin_allowed(origin: str | None, allowlist: Sequence[str], host: str | None) -> bool:
    """No Origin (non-browser client) passes; otherwise it must be allowlisted or same-host.

    DNS rebinding makes a browser send a foreign Origin to a loopback gateway; an empty allowlist
    still admits only an Origin naming the host the request was addressed to.
    """
    if origin is None:
        return True
    if "*" in allowlist or origin in allowlist:
        return True
    if allowlist:
        return False
    host_part = origin.split("://", 1)[-1].rstrip("/")
    return bool(host) and host_part == host and _loopback_host(host_part)


def _loopback_host(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in ("127.0.0.1", "localhost", "[::1]")
