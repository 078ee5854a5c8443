"""The gateway app factory: `create_app(settings)`; resources only through cleanup contexts.

Context order (exits run in reverse): HTTP sessions (requests, streams, control plane) → database
pool → audit emitter → stdio servers' loopback endpoint (children stopped after everything that
calls them) → backend registry (+ file watcher) → authenticator → PDP client → policy-change
listener (with a database pool) → upstream pool. The audit emitter is closed after everything that
may still emit, and the pool after the emitter's last flush.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from aiohttp import web

from gateway import middlewares
from gateway.calls.pipeline import STAGES
from gateway.calls.validate import SchemaCache
from gateway.keys import (
    AUTHENTICATOR,
    BRIDGE,
    CALL_STAGES,
    CLIENT_SESSION,
    CONTROL_SESSION,
    METRICS,
    PDP_PROBE,
    POLICY,
    SCHEMAS,
    SERVERS,
    SETTINGS,
    STREAM_SESSION,
    UPSTREAM,
)
from gateway.metrics import GatewayMetrics
from gateway.policy_listener import policy_listener_ctx
from gateway.routes import health, rest
from gateway.routes.mcp import setup_mcp_routes
from gateway.settings import GatewaySettings
from shared import db, tracing
from shared.audit import audit_ctx
from shared.keys import DB_POOL, REGISTRY, TRACING
from shared.metrics import HttpMetrics, service_registry, version

log = logging.getLogger(__name__)

DEV_MODE_WARNING = (
    "AUTHENTICATION IS DISABLED (--no-auth / AUTH_ENABLED=false): every caller is the fixed "
    "development subject %r with roles %s. Never run this way outside development."
)

REMOTE_NO_AUTH_WARNING = (
    "NO-AUTH MODE IS EXPOSED BEYOND LOOPBACK (MCPGW_GATEWAY_NO_AUTH_ALLOW_REMOTE=true, host %r): "
    "anyone who can reach this port acts as the development subject."
)


def create_app(settings: GatewaySettings) -> web.Application:
    """Build the gateway application from validated settings."""
    # client_max_size caps chunked bodies while they are read; keepalive_timeout doubles as the
    # header timeout (aiohttp closes a connection whose request line and headers are not complete
    # within it: slowloris); server_limits: middlewares/headers.py.
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        handler_args={**middlewares.server_limits(settings.max_header_bytes),
                      "keepalive_timeout": settings.header_timeout},
    )
    registry = service_registry("gateway")
    app[REGISTRY] = registry
    app[SETTINGS] = settings
    gateway_metrics = GatewayMetrics(registry)
    app[METRICS] = gateway_metrics
    app[SCHEMAS] = SchemaCache()
    app[CALL_STAGES] = STAGES

    dev = None
    if settings.auth_off:
        from shared.auth import dev_principal

        dev = dev_principal(tuple(settings.dev_roles))
        log.warning(DEV_MODE_WARNING, dev.subject, list(dev.roles))
        if settings.no_auth_allow_remote:
            log.warning(REMOTE_NO_AUTH_WARNING, settings.host)

    traced = tracing.setup("gateway", settings, registry, version())
    middlewares.install(app, settings, http_metrics=HttpMetrics(registry, "mcpgw_gateway"),
                        gateway_metrics=gateway_metrics, dev_principal=dev, tracer=traced.tracer if traced else None)
    if traced:  # first: the exporter runs before anything makes spans, and flushes last
        app[TRACING] = traced.tracer
        app.cleanup_ctx.append(traced.ctx)
    app.cleanup_ctx.append(session_ctx)
    # The pool serves the audit sink and the LISTEN connections (policy changes, session
    # revocations): turning Postgres audit off must not turn cross-replica notifications off.
    if settings.audit_postgres or settings.database_url:
        app.cleanup_ctx.append(
            db.pool_ctx(lambda: settings.database_url.get() if settings.database_url is not None else None, settings.data_dir,
                        lambda p: app.__setitem__(DB_POOL, p))
        )
    app.cleanup_ctx.append(audit_ctx(settings, "gateway"))
    app.cleanup_ctx.append(bridge_ctx)  # before the registry: it gives stdio/SSE servers their URLs
    app.cleanup_ctx.append(registry_ctx)
    if not settings.auth_off:
        app.cleanup_ctx.append(authenticator_ctx)
    app.cleanup_ctx.append(policy_ctx)
    app.cleanup_ctx.append(policy_listener_ctx)  # flushes the decision cache on policy change
    app.cleanup_ctx.append(upstream_ctx)

    app.add_routes(health.routes)
    app.add_routes(rest.routes)
    setup_mcp_routes(app)
    return app


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's three ClientSessions, each a connection pool of its own (why: keys.py); each
    user sets its own timeout, none has a cookie jar or reads proxy environment variables."""
    from gateway.upstream import create_session

    s = app[SETTINGS]
    allowlist = s.upstream_allowlist
    async with create_session(allowlist=allowlist) as session, \
            create_session(allowlist=allowlist, limit=s.upstream_stream_connections,
                           limit_per_host=s.upstream_stream_connections_per_host, queue=False) as streams, \
            create_session(allowlist=allowlist, limit=64, limit_per_host=32) as control:
        app[CLIENT_SESSION], app[STREAM_SESSION], app[CONTROL_SESSION] = session, streams, control
        yield


async def bridge_ctx(app: web.Application) -> AsyncIterator[None]:
    """The stdio/legacy-SSE bridge's loopback endpoint; on exit every child is stopped (none orphaned)."""
    from gateway.upstream.transports.bridge import BridgeHost, bridge_site
    from gateway.upstream.transports.stdio_process import StdioLimits

    s = app[SETTINGS]
    host = BridgeHost(StdioLimits(
        max_memory_mb=s.stdio_max_memory_mb, max_open_files=s.stdio_max_open_files,
        max_cpu_seconds=s.stdio_max_cpu_seconds, stop_grace=s.stdio_stop_grace,
        backoff_max=s.stdio_restart_backoff_max, healthy_seconds=s.stdio_healthy_seconds,
        stderr_lines_per_second=s.stdio_stderr_lines_per_second, max_message_bytes=s.mcp_max_response_bytes,
    ), session=app[CLIENT_SESSION], streams=app[STREAM_SESSION], session_idle=s.upstream_session_idle,
        sessions_per_server=s.upstream_own_connections_per_server)
    app[BRIDGE] = host
    async for _ in bridge_site(host):
        yield


async def registry_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the servers file (a bad file stops the start) and watch it for changes."""
    from gateway.credentials import CredentialStore
    from gateway.registry import Registry, watch

    settings = app[SETTINGS]
    registry = Registry(
        settings.servers_file,
        allowlist=settings.upstream_allowlist or None,
        credentials=CredentialStore(app[CONTROL_SESSION]),
        bridge_url=app[BRIDGE].url_for,
    )
    app[BRIDGE].credentials = registry.credentials
    registry.listeners.append(app[BRIDGE].sync)
    registry.load()
    app[SERVERS] = registry
    log.info("backends loaded", extra={"servers": sorted(registry.servers), "file": str(settings.servers_file)})
    async for _ in watch(registry):
        yield


async def authenticator_ctx(app: web.Application) -> AsyncIterator[None]:
    """The JWT authenticator on the app's session (its JWKS warmed best-effort)."""
    from shared.auth import AuthConfig, Authenticator, ClaimMapping

    s = app[SETTINGS]
    config = AuthConfig(
        audience=s.audience or "", issuer=s.issuer, jwks_url=s.jwks_url, algorithms=tuple(s.algorithms),
        leeway=s.leeway,
        mapping=ClaimMapping(subject=tuple(s.subject_claims), roles=tuple(s.role_claims), groups=tuple(s.group_claims),
                             scopes=tuple(s.scope_claims), client_id=s.client_id or s.audience),
    )
    refreshes = app[METRICS].jwks_refreshes
    authenticator = Authenticator(config, app[CONTROL_SESSION], on_jwks_refresh=lambda outcome: refreshes.labels(outcome).inc())
    if not await authenticator.warm():
        log.warning("identity provider unreachable at start; requests fail closed until it answers")
    app[AUTHENTICATOR] = authenticator
    yield
    authenticator.clear_cache()


async def policy_ctx(app: web.Application) -> AsyncIterator[None]:
    """The PDP client (its own keep-alive pool and decision cache)."""
    from gateway.pep import PolicyClient
    from gateway.readiness import PdpProbe

    s = app[SETTINGS]
    app[POLICY] = PolicyClient(app[CONTROL_SESSION], s.pdp_url, token=s.pdp_token, timeout=s.pdp_timeout,
                               cache_ttl=s.decision_cache_ttl, cache_size=s.decision_cache_size, max_batch=s.pdp_max_batch,
                               registry=app[REGISTRY])
    app[PDP_PROBE] = PdpProbe(app[CONTROL_SESSION], s.pdp_url, token=s.pdp_token, timeout=s.pdp_timeout)
    yield


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """One MCP client per backend, sharing pooled connections (streams in their own pool)."""
    from gateway.mcp.admission import CatalogGuard
    from gateway.upstream import UpstreamPool

    registry, s = app[SERVERS], app[SETTINGS]
    assert registry.credentials is not None  # registry_ctx always gives it a store
    guard = CatalogGuard(app[METRICS].catalog_dropped)
    pool = UpstreamPool(
        app[CLIENT_SESSION], registry.credentials, registry, tools_ttl=s.tools_cache_ttl,
        max_response_bytes=s.mcp_max_response_bytes, max_call_bytes=s.mcp_max_call_bytes,
        list_filter=guard.result, max_list_items=s.mcp_max_list_items, list_oversized=guard.oversized,
        sessions_per_backend=s.upstream_sessions_per_backend,
        session_idle=s.upstream_session_idle, subject_concurrency=s.upstream_subject_concurrency,
        subject_queue=s.upstream_subject_queue, streams=app[STREAM_SESSION],
    )
    app[UPSTREAM] = pool
    yield
    await pool.close()
