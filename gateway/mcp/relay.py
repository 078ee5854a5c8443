"""HTTP-level forwarding to one backend for the passthrough endpoint.

Only MCP's own headers cross the gateway (allowlist): the client's Authorization, cookies and Host
never reach a backend, and the backend's credential (from the registry's credential store) is
added here and nowhere else. The Host sent is the backend's own, which SDK servers bound to
loopback require (they answer 421 to a foreign Host).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
from yarl import URL

from gateway.backend_auth import inject
from gateway.upstream.errors import UpstreamError, UpstreamTimeout
from shared.jsonutil import dumps

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


async def send(
    session: aiohttp.ClientSession, server: Any, credentials: Any, method: str,
    headers: dict[str, str], message: dict[str, Any] | None, *, stream: bool = False,
) -> aiohttp.ClientResponse:
    """Open one request to `server` (caller reads and releases the response).

    `stream` lifts the read timeout: a GET stream may stay quiet for as long as the backend likes.
    """
    query: dict[str, str] = {}
    injection = await credentials.injection(server) if credentials is not None else None
    if message is not None:
        message = inject(injection, headers, query, message)
    else:
        inject(injection, headers, query, {})
    url = URL(server.url)
    if query:
        url = url.update_query(query)
    timeout = aiohttp.ClientTimeout(total=None, connect=min(10.0, server.timeout), sock_read=None if stream else server.timeout)
    try:
        return await session.request(
            method, url, headers=headers, data=dumps(message) if message is not None else None,
            timeout=timeout, allow_redirects=False,
        )
    except TimeoutError:
        raise UpstreamTimeout(server.name, server.timeout) from None
    except aiohttp.ClientError as exc:
        raise UpstreamError(server.name, f"unreachable ({type(exc).__name__})") from None
