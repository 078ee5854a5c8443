"""The auth middleware's hook: a 401 on an MCP endpoint names the resource metadata URL."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.edge import is_mcp_path
from gateway.keys import MCP_STATE
from gateway.mcp import endpoint


def add_resource_metadata(request: web.Request, exc: Any, headers: dict[str, str]) -> None:
    """Set `WWW-Authenticate: Bearer resource_metadata="…"` (plus the error) for MCP paths."""
    state = request.app.get(MCP_STATE)
    if state is None or not is_mcp_path(request.path):
        return
    from shared.auth import www_authenticate

    headers["WWW-Authenticate"] = www_authenticate(exc, endpoint.metadata_url(request, state))
