"""Per-app state of the MCP endpoints: session codec, metrics, settings, limits and registries."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from gateway.mcp import methods
from gateway.mcp.backchannel import HeldCalls, Pending
from gateway.mcp.fanout import ListCache
from gateway.mcp.inflight import InFlight
from gateway.mcp.limits import StreamLimits
from gateway.mcp.listen import CatalogPoller
from gateway.mcp.protocol import Message
from gateway.mcp.revocations import Revocations
from gateway.mcp.sealed_state import StateSeal
from gateway.mcp.sessions import Session, SessionCodec
from gateway.mcp.subscriptions import Hub
from gateway.metrics import labelled
from gateway.settings import GatewaySettings

log = logging.getLogger(__name__)


class McpMetrics:
    """Sessions, relayed messages by method and era, open SSE streams, upstream errors."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sessions_opened = Counter("mcpgw_gateway_mcp_sessions_opened_total", "MCP sessions minted",
                                       ["endpoint"], registry=registry)
        # Sessions are self-contained tokens; "open" = minted here minus DELETEd here (per replica).
        self.sessions_open = Gauge("mcpgw_gateway_mcp_sessions_open", "MCP sessions open (this replica)",
                                   ["endpoint"], registry=registry)
        self.messages = Counter("mcpgw_gateway_mcp_messages_total", "MCP messages relayed",
                                ["endpoint", "method", "era"], registry=registry)
        self.streams_open = Gauge("mcpgw_gateway_mcp_sse_streams_open", "SSE streams being relayed",
                                  ["endpoint"], registry=registry)
        self.upstream_errors = Counter("mcpgw_gateway_mcp_upstream_errors_total",
                                       "Backend failures seen by MCP endpoints", ["server"], registry=registry)
        self._message_children: dict[tuple[str, ...], Any] = {}

    def message(self, endpoint: str, msg: Message, era: str) -> None:
        """Count one message (unknown methods together: a bounded label)."""
        method = "response" if msg.kind == "response" else msg.method
        label = method if method in KNOWN_METHODS else "other"
        labelled(self._message_children, self.messages, endpoint, label, era).inc()


KNOWN_METHODS = methods.KNOWN_REQUESTS | methods.CLIENT_NOTIFICATIONS | {"response"}


@dataclass
class McpState:
    """Everything the MCP handlers share within one app."""

    codec: SessionCodec
    metrics: McpMetrics
    settings: GatewaySettings
    pending: Pending
    streams: StreamLimits
    held: HeldCalls
    seals: StateSeal  # a 2026-07-28 backend's requestState, bound to whom it was issued for
    lists: ListCache = field(default_factory=ListCache)
    catalogs: CatalogPoller = field(default_factory=CatalogPoller)
    hub: Hub = field(default_factory=Hub)
    inflight: InFlight = field(default_factory=InFlight)
    revocations: Revocations = field(init=False)

    def __post_init__(self) -> None:
        self.revocations = Revocations(self.codec)

    def mint(self, endpoint: str, subject: str, version: str, **fields: Any) -> str:
        """A new session id for `subject` on `endpoint`, counted as opened."""
        token, _ = self.codec.mint(subject, version, **fields)
        self.metrics.sessions_opened.labels(endpoint).inc()
        self.metrics.sessions_open.labels(endpoint).inc()
        return token

    async def end(self, endpoint: str, session: Session) -> None:
        """A DELETEd session: refused on every replica sharing the database from now on."""
        await self.revocations.revoke(session)
        self.metrics.sessions_open.labels(endpoint).dec()


def build_state(settings: GatewaySettings, registry: CollectorRegistry) -> McpState:
    """The state from the validated gateway settings."""
    secret = settings.mcp_session_secret
    raw = secret.get() if secret is not None else None
    if not raw:
        log.warning("MCPGW_GATEWAY_MCP_SESSION_SECRET is not set: MCP sessions are valid on this replica only")
    key = raw.encode() if raw else os.urandom(32)  # the sessions' secret: any replica opens either
    return McpState(
        codec=SessionCodec(key, max_age=settings.mcp_session_ttl),
        metrics=McpMetrics(registry),
        settings=settings,
        pending=Pending(settings.mcp_max_pending_requests),
        streams=StreamLimits(settings.mcp_max_streams_per_session, settings.mcp_max_streams_per_subject),
        held=HeldCalls(settings.mcp_max_held_calls_per_subject, settings.mcp_max_held_calls, settings.mcp_input_timeout),
        seals=StateSeal(key, settings.mcp_input_timeout),
        lists=ListCache(max_bytes=settings.mcp_list_cache_bytes),
    )
