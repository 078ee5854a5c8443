"""Per-app state of the MCP endpoints: session codec, metrics, settings view; one cleanup ctx."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.mcp.backchannel import Pending
from gateway.mcp.catalog_watch import CatalogPoller
from gateway.mcp.fanout import ListCache
from gateway.mcp.inflight import InFlight
from gateway.mcp.limits import StreamLimits
from gateway.mcp.revocations import Revocations
from gateway.mcp.sessions import Session, SessionCodec
from gateway.mcp.subscriptions import Hub

log = logging.getLogger(__name__)


class McpMetrics:
    """Sessions, relayed messages by method and era, open SSE streams, upstream errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions_opened = Counter(
            "mcpgw_gateway_mcp_sessions_opened_total", "MCP sessions minted", ["endpoint"], registry=registry,
        )
        # Sessions are self-contained tokens; "open" = minted here minus DELETEd here (per replica).
        self.sessions_open = Gauge(
            "mcpgw_gateway_mcp_sessions_open", "MCP sessions open (this replica)", ["endpoint"], registry=registry,
        )
        self.messages = Counter(
            "mcpgw_gateway_mcp_messages_total", "MCP messages relayed", ["endpoint", "method", "era"],
            registry=registry,
        )
        self.streams_open = Gauge(
            "mcpgw_gateway_mcp_sse_streams_open", "SSE streams being relayed", ["endpoint"], registry=registry,
        )
        self.upstream_errors = Counter(
            "mcpgw_gateway_mcp_upstream_errors_total", "Backend failures seen by MCP endpoints", ["server"],
            registry=registry,
        )
        self._message_children: dict[tuple[str, str, str], Any] = {}

    def message(self, endpoint: str, method: str, era: str) -> None:
        """Count one message; children are cached (`labels()` cost ~1.5 µs a call on the hot path)."""
        key = (endpoint, method, era)
        child = self._message_children.get(key)
        if child is None:
            child = self._message_children[key] = self.messages.labels(endpoint, method, era)
        child.inc()


KNOWN_METHODS = frozenset({
    "initialize", "ping", "server/discover", "tools/list", "tools/call", "resources/list", "resources/read",
    "resources/templates/list", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
    "completion/complete", "logging/setLevel", "subscriptions/listen", "notifications/initialized",
    "notifications/cancelled", "notifications/progress", "notifications/roots/list_changed", "response",
})


def method_label(method: str) -> str:
    """Bounded metric label: unknown methods are counted together."""
    return method if method in KNOWN_METHODS else "other"


@dataclass
class McpState:
    """Everything the MCP handlers share within one app."""

    codec: SessionCodec
    metrics: McpMetrics
    allowed_origins: list[str] = field(default_factory=list)
    broadcast: bool = True
    page_size: int = 100
    required_scopes: list[str] = field(default_factory=list)
    public_url: str | None = None
    authorization_servers: list[str] = field(default_factory=list)
    scopes_supported: list[str] = field(default_factory=list)
    lists: ListCache = field(default_factory=ListCache)
    max_response_bytes: int = 16_777_216
    max_call_bytes: int = 67_108_864
    pending: Pending = field(default_factory=Pending)
    streams: StreamLimits = field(default_factory=StreamLimits)
    catalogs: CatalogPoller = field(default_factory=CatalogPoller)
    hub: Hub = field(default_factory=Hub)
    inflight: InFlight = field(default_factory=InFlight)
    revocations: Revocations = field(init=False)

    def __post_init__(self) -> None:
        self.revocations = Revocations(self.codec)

    async def revoke(self, session: Session) -> None:
        """End a DELETEd session on this replica and (with a database) on every other one."""
        await self.revocations.revoke(session)


def build_state(settings: object, registry: CollectorRegistry) -> McpState:
    """The state from gateway settings (missing MCP fields fall back to safe defaults)."""
    secret = getattr(settings, "mcp_session_secret", None)
    raw = secret.get() if secret is not None and hasattr(secret, "get") else secret
    if not raw:
        log.warning("MCPGW_GATEWAY_MCP_SESSION_SECRET is not set: MCP sessions are valid on this replica only")
    issuer = getattr(settings, "issuer", None)
    servers = list(getattr(settings, "oauth_authorization_servers", None) or ([issuer] if issuer else []))
    return McpState(
        codec=SessionCodec(raw or None, max_age=float(getattr(settings, "mcp_session_ttl", 86_400.0))),
        metrics=McpMetrics(registry),
        allowed_origins=list(getattr(settings, "mcp_allowed_origins", []) or []),
        broadcast=bool(getattr(settings, "mcp_broadcast", True)),
        page_size=int(getattr(settings, "mcp_page_size", 100)),
        required_scopes=list(getattr(settings, "mcp_required_scopes", []) or []),
        public_url=getattr(settings, "public_url", None),
        authorization_servers=servers,
        scopes_supported=list(getattr(settings, "oauth_scopes", []) or []),
        max_response_bytes=int(getattr(settings, "mcp_max_response_bytes", 16_777_216)),
        max_call_bytes=int(getattr(settings, "mcp_max_call_bytes", 67_108_864)),
        pending=Pending(int(getattr(settings, "mcp_max_pending_requests", 16))),
        streams=StreamLimits(int(getattr(settings, "mcp_max_streams_per_session", 4)),
                             int(getattr(settings, "mcp_max_streams_per_subject", 32))),
    )
