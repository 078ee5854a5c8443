"""Routes of the gateway's own MCP server: `/mcp`, `/servers/{name}/mcp`, OAuth resource metadata."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway.edge import is_mcp_path
from gateway.keys import AUTH_CHALLENGE, MCP_STATE, SETTINGS
from gateway.mcp import (
    aggregated,
    endpoint,
    oauth_metadata,
    passthrough,
    passthrough_session,
)
from gateway.mcp.aggregated_subs import catalogs_ctx
from gateway.mcp.peer_listener import peers_ctx
from gateway.mcp.revocations import revocations_ctx
from gateway.mcp.state import build_state
from shared.auth import AuthError, www_authenticate
from shared.jsonutil import json_response
from shared.keys import REGISTRY


async def resource_metadata(request: web.Request) -> web.Response:
    """RFC 9728 metadata for the gateway root or a path-suffixed MCP endpoint."""
    state = request.app[MCP_STATE]
    suffix = request.path[len(oauth_metadata.WELL_KNOWN):]
    if suffix and not is_mcp_path(suffix):
        raise web.HTTPNotFound()
    settings = state.settings  # the configured authorization servers, else the issuer
    servers = settings.oauth_authorization_servers or ([settings.issuer] if settings.issuer else [])
    doc = oauth_metadata.protected_resource_metadata(endpoint.base_url(request, state), suffix, servers,
                                                     settings.oauth_scopes)
    return json_response(doc, headers=oauth_metadata.cache_headers(reflected=not state.settings.public_url))


def add_resource_metadata(request: web.Request, exc: AuthError, headers: dict[str, str]) -> None:
    """The auth middleware's hook: a 401 on an MCP endpoint names its resource metadata URL (RFC 9728)."""
    state = request.app.get(MCP_STATE)
    if state is not None and is_mcp_path(request.path):
        headers["WWW-Authenticate"] = www_authenticate(exc, endpoint.metadata_url(request, state))


async def _shutdown_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup ctx: at shutdown, calls still held for a retry are ended (their backends told) and every
    backend resource feed is closed."""
    yield
    state = app[MCP_STATE]
    state.held.close()
    await state.hub.close()


def setup_mcp_routes(app: web.Application) -> None:
    """Install the MCP state and routes on the gateway app."""
    state = app[MCP_STATE] = build_state(app[SETTINGS], app[REGISTRY])
    app[AUTH_CHALLENGE] = add_resource_metadata
    # Appended after the database pool's ctx (create_app adds routes last), so the pool exists.
    app.cleanup_ctx.append(revocations_ctx(state.revocations))
    app.cleanup_ctx.append(peers_ctx)  # held calls reachable from other replicas (docs/mcp.md)
    app.cleanup_ctx.append(catalogs_ctx)
    app.cleanup_ctx.append(_shutdown_ctx)
    app.router.add_route("POST", "/mcp", aggregated.post)
    app.router.add_route("GET", "/mcp", aggregated.get)
    app.router.add_route("DELETE", "/mcp", aggregated.delete)
    app.router.add_route("POST", "/servers/{name}/mcp", passthrough.post)
    app.router.add_route("GET", "/servers/{name}/mcp", passthrough_session.get)
    app.router.add_route("DELETE", "/servers/{name}/mcp", passthrough_session.delete)
    app.router.add_get(oauth_metadata.WELL_KNOWN, resource_metadata)
    app.router.add_get(oauth_metadata.WELL_KNOWN + "/{tail:.*}", resource_metadata)
