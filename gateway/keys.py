"""Typed app and request keys of the gateway (shared ones live in shared/keys.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from gateway.calls.call import Stage
from gateway.calls.validate import SchemaCache
from gateway.pep import PolicyClient
from gateway.registry import Registry
from gateway.upstream import UpstreamPool
from gateway.upstream.sessions import Caller
from gateway.upstream.transports.bridge import BridgeHost
from shared.auth import Authenticator, AuthError

if TYPE_CHECKING:
    from gateway.gwaudit import AuditInfo
    from gateway.mcp.peers import Peers
    from gateway.mcp.state import McpState
    from gateway.metrics import GatewayMetrics
    from gateway.readiness import PdpProbe
    from gateway.settings import GatewaySettings
    from shared.auth import Principal

# Annotated rather than typed by argument: these classes import nothing from here, but the
# gateway's own ones would make an import cycle.
SETTINGS: web.AppKey[GatewaySettings] = web.AppKey("gateway_settings")
CLIENT_SESSION = web.AppKey("client_session", aiohttp.ClientSession)  # backend requests
# Long-lived backend streams (GET streams, subscriptions/listen, legacy SSE event streams): each holds
# a connection while open, so they get a pool of their own that refuses rather than queues when full.
STREAM_SESSION = web.AppKey("stream_session", aiohttp.ClientSession)
# The PDP, the JWKS and oauth2 token endpoints: a pool of their own, so backend traffic (long-lived
# streams, slow calls) can never leave the gateway waiting for a connection to decide or verify.
CONTROL_SESSION = web.AppKey("control_session", aiohttp.ClientSession)
METRICS: web.AppKey[GatewayMetrics] = web.AppKey("gateway_metrics")
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
POLICY = web.AppKey("policy_client", PolicyClient)
PDP_PROBE: web.AppKey[PdpProbe] = web.AppKey("pdp_probe")
SERVERS = web.AppKey("server_registry", Registry)
UPSTREAM = web.AppKey("upstream_pool", UpstreamPool)
# The supervised stdio servers and their loopback endpoint.
BRIDGE = web.AppKey("stdio_host", BridgeHost)
# Compiled tool input schemas (gateway/calls), shared by every entry point.
SCHEMAS = web.AppKey("tool_schemas", SchemaCache)
# The call pipeline's stages, in order (gateway/calls/pipeline.py): every entry point runs them.
CALL_STAGES: web.AppKey[tuple[Stage, ...]] = web.AppKey("call_stages")

PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
REQUEST_ID = web.RequestKey("request_id", str)
AUDIT_INFO: web.RequestKey[AuditInfo] = web.RequestKey("audit_info")
# The request body parsed once by the JSON limits middleware (absent when the body is not JSON).
JSON_BODY: web.RequestKey[object] = web.RequestKey("json_body")
# Who `/mcp` and passthrough requests reach backends for (a per-subject backend session: upstream/sessions.py).
CALLER = web.RequestKey("upstream_caller", Caller)
# An MCP answer already started as SSE: a late cancel or failure ends it, never starts another.
ANSWER_STREAM = web.RequestKey("answer_stream", web.StreamResponse)
# Adds to a 401's headers (request, AuthError, headers): the MCP endpoints name their RFC 9728
# metadata there. Registered by gateway.routes.mcp, so the auth middleware never imports gateway/mcp.
AUTH_CHALLENGE: web.AppKey[Callable[[web.Request, AuthError, dict[str, str]], None]] = web.AppKey("auth_challenge")
# State of the MCP endpoints (gateway/mcp, installed by gateway.routes.mcp.setup_mcp_routes).
MCP_STATE: web.AppKey[McpState] = web.AppKey("mcp_state")
# The peer channel (gateway/mcp/peer_listener.py), set only when MCPGW_GATEWAY_PEER_LISTEN is.
PEERS: web.AppKey[Peers] = web.AppKey("peers")
