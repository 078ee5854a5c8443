"""Typed app and request keys of the gateway (shared ones live in shared/keys.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("gateway_settings", "GatewaySettings")
CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)
METRICS = web.AppKey("gateway_metrics", "GatewayMetrics")
# Owned by other modules; typed loosely so this module imports none of them.
AUTHENTICATOR = web.AppKey("authenticator", Any)
POLICY = web.AppKey("policy_client", Any)
SERVERS = web.AppKey("server_registry", Any)
UPSTREAM = web.AppKey("upstream_pool", Any)

PRINCIPAL = web.RequestKey("principal", "Principal")
REQUEST_ID = web.RequestKey("request_id", str)
AUDIT_INFO = web.RequestKey("audit_info", "AuditInfo")
MCP_STATE = web.AppKey("mcp_state", Any)  # gateway.mcp.state.McpState
