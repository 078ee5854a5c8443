"""`GET /` (API info), `GET /health`, `GET /config` (auth required) and `GET /metrics`."""

from __future__ import annotations

from aiohttp import web

from gateway import __version__
from gateway.errors import Forbidden
from gateway.keys import AUTHENTICATOR, PDP_PROBE, SERVERS, SETTINGS
from gateway.readiness import audit_state, keys_problem
from gateway.routes import common as c
from shared.jsonutil import json_response
from shared.keys import AUDIT
from shared.metrics import metrics_handler
from shared.settings import public_view

routes = web.RouteTableDef()

ENDPOINTS = {
    "servers": "GET /mcp/servers",
    "server_info": "GET /mcp/server/{name}/info",
    "list_tools": "GET /mcp/list-tools?mcp_server={name}",
    "invoke": "POST /mcp/invoke?mcp_server={name}",
    "invoke_broadcast": "POST /mcp/invoke-broadcast",
    "tools": "GET /tools",
    "tool_invoke": "POST /tools/{name}/invoke",
    "health": "GET /health",
    "ready": "GET /readyz",
    "config": "GET /config",
    "metrics": "GET /metrics",
}


@routes.get("/")
async def api_info(request: web.Request) -> web.Response:
    """Name, version, endpoints and whether auth is on."""
    settings = request.app[SETTINGS]
    return json_response({
        "name": "mcpgw gateway",
        "version": __version__,
        "description": "Security and governance gateway between AI agents and MCP servers",
        "endpoints": ENDPOINTS,
        "status": "running",
        "auth_enabled": not settings.auth_off,
    })


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    """Liveness plus the state of the servers file and the audit sink."""
    registry = request.app[SERVERS]
    return json_response({
        "status": "healthy",
        "auth_enabled": not request.app[SETTINGS].auth_off,
        "servers": len(registry.servers),
        "servers_file_error": registry.last_error is not None,
        "servers_file_version": registry.file_version,
        "audit_database": audit_state(request.app.get(AUDIT), postgres=True),
    })


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Readiness for orchestrators: 503 with the problems while requests would fail anyway."""
    app = request.app
    problems = []
    if app.get(SERVERS) is None:
        problems.append("servers file not loaded")
    pdp = await app[PDP_PROBE].check()
    if pdp is not None:
        problems.append(pdp)
    keys = await keys_problem(app.get(AUTHENTICATOR))
    if keys is not None:
        problems.append(keys)
    body = {
        "status": "not_ready" if problems else "ready",
        "problems": problems,
        "audit_database": audit_state(app.get(AUDIT), app[SETTINGS].audit_postgres),
    }
    return json_response(body, status=503 if problems else 200)


@routes.get("/config")
async def config(request: web.Request) -> web.Response:
    """Effective settings with secrets masked; dev mode is shown plainly. Admin roles only."""
    info = c.audited(request, "get_config")
    settings = request.app[SETTINGS]
    if not c.principal(request).has_any_role(list(settings.admin_roles)):  # token roles, as the PDP admin API
        info.denied = True
        raise Forbidden(f"requires one of the roles: {', '.join(settings.admin_roles)}")
    view = public_view(settings)
    view["auth_mode"] = "DEVELOPMENT (no authentication)" if settings.auth_off else "jwt"
    return json_response(view)


routes.get("/metrics")(metrics_handler)
