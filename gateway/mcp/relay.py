"""Which headers cross the passthrough endpoint, each way.

Only MCP's own headers cross the gateway (allowlist): the client's Authorization, cookies and Host
never reach a backend; the backend's credential is added by the one request path
(gateway/upstream/sender.py) and nowhere else. The Host sent is the backend's own, which SDK servers bound to
loopback require (they answer 421 to a foreign Host).
"""

from __future__ import annotations

from collections.abc import Mapping

# Mcp-Method / Mcp-Name / Mcp-Param-* are never copied from the client: the passthrough rebuilds
# them from the body it checked (protocol.routing_headers), so a backend never routes on a claim.
FORWARDED = ("accept", "content-type", "mcp-protocol-version", "last-event-id")
# Backend response headers a client may see (never Set-Cookie or the backend's session id).
RETURNED = ("content-type", "cache-control", "allow")


def forward_headers(incoming: Mapping[str, str], upstream_session: str | None) -> dict[str, str]:
    """The headers to send upstream: the allowlisted MCP headers only, plus the backend's session id."""
    out: dict[str, str] = {}
    for name, value in incoming.items():
        if name.lower() in FORWARDED:
            out[name] = value
    if upstream_session:
        out["Mcp-Session-Id"] = upstream_session
    return out


def returned_headers(upstream: Mapping[str, str]) -> dict[str, str]:
    """Backend response headers worth passing back."""
    return {k: v for k, v in upstream.items() if k.lower() in RETURNED}
