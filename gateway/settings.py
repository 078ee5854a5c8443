"""Gateway settings: `MCPGW_GATEWAY_*` env vars, plus the env names of the gateway it replaces.

Migration aliases: `AUTH_ENABLED=false` means no-auth, `KEYCLOAK_URL` + `KEYCLOAK_REALM` give the
issuer `{KEYCLOAK_URL}/realms/{REALM}`, `JWT_ALGORITHM`, `JWT_AUDIENCE`, `JWKS_URL`,
`MCP_SERVERS_CONFIG`, `POLICY_FILE` (informational: the PDP reads it) and, via CommonSettings,
`AUDIT_LOG_FILE`, `AUDIT_TO_STDOUT`, `DATABASE_URL`. Derived values are filled in by `finalize`,
which also runs the cross-field checks and lists every problem at once.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.common_settings import CommonSettings
from shared.settings import Secret, SettingsError, load_settings, setting

# The largest JSON body or SSE event read from a backend (default of MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES);
# the one place this limit is written: the upstream client and the MCP state read it from here.
MAX_RESPONSE_BYTES = 16_777_216
# Everything one call may relay: result + notifications + server→client requests (MCPGW_GATEWAY_MCP_MAX_CALL_BYTES).
MAX_CALL_BYTES = 67_108_864
# Seconds an agent has to answer a backend's request relayed to it (sampling, elicitation, roots).
ANSWER_TIMEOUT = 300.0

PREFIX = "MCPGW_GATEWAY_"
DEFAULT_ALGORITHMS = ["RS256", "ES256", "PS256", "EdDSA"]


def _between(low: int, high: int) -> Callable[[int], str | None]:
    return lambda value: None if low <= value <= high else f"must be between {low} and {high}"


def _positive(value: float) -> str | None:
    return None if value > 0 else "must be greater than 0"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "must be 0 or more"


def _algorithms(values: list[str]) -> str | None:
    if not values:
        return "at least one algorithm is required"
    # Symmetric algorithms would let anyone holding the (public) JWKS forge tokens.
    bad = [a for a in values if a.lower() == "none" or a.upper().startswith("HS")]
    return f"not allowed: {', '.join(bad)}" if bad else None


@dataclass(frozen=True)
class GatewaySettings(CommonSettings):
    """Everything `mcpgw gateway serve` can be told."""

    environment: str = setting("production", choices=("production", "development"),
        help="development relaxes production-only requirements (public_url); never use it exposed")
    host: str = setting("127.0.0.1", help="Listen address (0.0.0.0 to accept remote agents)")
    port: int = setting(8000, check=_between(0, 65535), help="Listen port")
    workers: int = setting(1, check=_positive,
        help="Processes serving the port (SO_REUSEPORT), to use every core; they share sessions like replicas")
    servers_file: Path = setting(Path("mcp_servers.yaml"), aliases=("MCP_SERVERS_CONFIG",),
        help="Backend registry (mcp_servers.yaml)")
    upstream_allowlist: list[str] = setting([],
        help="Allowed upstream hosts/CIDRs (comma separated); empty = any http(s) URL")
    pdp_url: str = setting("http://127.0.0.1:8181", help="Base URL of the PDP (AuthZEN API)")
    pdp_token: Secret | None = setting(None, secret=True, help="Bearer token for a standalone PDP")
    pdp_timeout: float = setting(2.0, check=_positive, help="Seconds before a PDP call counts as failed (deny)")
    decision_cache_ttl: float = setting(5.0, check=_not_negative, help="Seconds a PDP decision is reused; 0 = off")
    decision_cache_size: int = setting(50_000, check=_positive, help="Max cached decisions")
    pdp_max_batch: int = setting(10_000, check=_positive,
        help="Most evaluations or search candidates sent in one PDP request (at most the PDP's MCPGW_PDP_MAX_BATCH)")
    tools_cache_ttl: float = setting(30.0, check=_not_negative,
        help="Seconds a backend's tools/list answers 'unknown tool' (404) without forwarding; 0 = off")
    auth_enabled: bool = setting(True, aliases=("AUTH_ENABLED",), help="false = same as --no-auth")
    no_auth: bool = setting(False, help="Development only: no token check, fixed dev subject")
    dev_roles: list[str] = setting([], help="Roles given to the dev subject in no-auth mode (none by default)")
    no_auth_allow_remote: bool = setting(False,
        help="No-auth mode on a non-loopback host (refused otherwise); anyone who reaches it is the dev subject")
    admin_roles: list[str] = setting(["admin"], help="Token roles that may read introspection endpoints (/config)")
    max_header_bytes: int = setting(16_384, check=_positive,
        help="Largest accepted request header value, e.g. a bearer token (431 above)")
    issuer: str | None = setting(None, help="OIDC issuer URL (discovery finds the JWKS)")
    keycloak_url: str | None = setting(None, env="KEYCLOAK_URL", help="Legacy: Keycloak base URL (+ realm → issuer)")
    keycloak_realm: str | None = setting(None, env="KEYCLOAK_REALM", help="Legacy: Keycloak realm name")
    jwks_url: str | None = setting(None, aliases=("JWKS_URL",), help="JWKS URL (instead of or besides discovery)")
    audience: str | None = setting(None, aliases=("JWT_AUDIENCE",), help="Required token audience")
    algorithms: list[str] = setting(DEFAULT_ALGORITHMS, aliases=("JWT_ALGORITHM",), check=_algorithms,
        help="Accepted JWT algorithms")
    leeway: float = setting(30.0, check=_not_negative, help="Clock skew allowed on exp/nbf/iat, seconds")
    subject_claims: list[str] = setting(["sub", "preferred_username", "email"],
        help="Claims tried in order for the subject")
    role_claims: list[str] = setting(["realm_access.roles", "resource_access.{client_id}.roles"],
        help="Claim paths holding roles")
    group_claims: list[str] = setting(["groups"], help="Claim paths holding groups")
    scope_claims: list[str] = setting(["scope", "scp"], help="Claim paths holding scopes")
    client_id: str | None = setting(None, help="Client id for resource_access.<client>.roles (default: audience)")
    policy_file: Path | None = setting(None, env="POLICY_FILE", help="Legacy: read by the PDP, shown in /config")
    max_body_bytes: int = setting(1_048_576, check=_positive, help="Largest accepted request body (413 above)")
    # At most 200: the body travels on inside a few envelope levels, and orjson writes at most 254.
    max_json_depth: int = setting(64, check=_between(1, 200),
        help="Deepest nesting accepted in a JSON request body (400 above)")
    max_json_string: int = setting(262_144, check=_positive,
        help="Longest string or key (characters) accepted in a JSON request body (400 above)")
    max_json_items: int = setting(10_000, check=_positive,
        help="Most elements of one array or members of one object in a JSON request body (400 above)")
    broadcast_deadline: float = setting(30.0, check=_positive, help="Overall seconds for one broadcast")
    broadcast_max_targets: int = setting(64, check=_positive, help="Most servers one broadcast may call")
    # MCP endpoints (/mcp, /servers/{name}/mcp) — see docs/mcp.md.
    public_url: str | None = setting(None,
        help="External base URL of the gateway (OAuth resource metadata); required with auth outside development")
    mcp_session_secret: Secret | None = setting(None, secret=True,
        help="Key sealing MCP session ids; share it between replicas (unset = per process)")
    mcp_session_ttl: float = setting(86_400.0, check=_positive, help="Seconds an MCP session id stays valid")
    mcp_allowed_origins: list[str] = setting([],
        help="Browser Origins allowed on every route, REST and MCP (403 others; empty = same loopback host only)")
    mcp_broadcast: bool = setting(True, help="List tools offered by several servers unprefixed on /mcp")
    mcp_page_size: int = setting(100, check=_positive, help="Items per page of aggregated MCP lists")
    mcp_required_scopes: list[str] = setting([], help="OAuth scopes a token needs for the MCP endpoints")
    mcp_max_response_bytes: int = setting(MAX_RESPONSE_BYTES, check=_positive,
        help="Largest backend answer (JSON body or one SSE event) the gateway reads or relays")
    # Exhaustion limits (docs/security/exhaustion.md): one caller or backend cannot take the gateway down.
    mcp_max_call_bytes: int = setting(MAX_CALL_BYTES, check=_positive,
        help="Most bytes relayed for one call (result, notifications and server-to-client requests together); past it "
             "the call ends with an error and the backend request is cancelled")
    mcp_max_list_items: int = setting(10_000, check=_positive,
        help="Most items of one backend's list (all pages; their bytes count against MCP_MAX_CALL_BYTES); a longer "
             "list is left out whole (counted in mcpgw_gateway_catalog_items_dropped_total, logged once)")
    mcp_list_cache_bytes: int = setting(64 * 1024 * 1024, check=_positive,
        help="Most bytes of backends' lists (items as JSON) the /mcp list cache keeps in all; past it the oldest "
             "lists kept are dropped, and a larger list is served but not kept")
    mcp_max_pending_requests: int = setting(16, check=_positive,
        help="Server-to-client requests (sampling, elicitation, roots) awaiting one subject's answers; "
             "more are refused")
    mcp_input_timeout: float = setting(60.0, check=_positive,
        help="Seconds a handshake-era backend's call is held for a 2026-07-28 agent's retry with the input it "
             "asked for (then the backend call is cancelled), and a 2026-07-28 backend's requestState is honoured")
    mcp_max_held_calls_per_subject: int = setting(8, check=_positive,
        help="Backend calls held for one subject's retries (input_required bridging); more are refused")
    mcp_max_held_calls: int = setting(1024, check=_positive,
        help="Backend calls held for agents' retries in all (input_required bridging)")
    # The peer channel (docs/mcp.md "Held calls and replicas"): held calls reachable from any replica.
    peer_listen: str | None = setting(None,
        help="host:port of this replica's peer listener, where other replicas forward retries and answers for "
             "calls held here (port 0 = any free port); unset = off (set by --workers to 127.0.0.1:0)")
    peer_advertise: str | None = setting(None,
        help="host:port other replicas reach the peer listener at (e.g. the pod IP); port 0 = the bound port; "
             "default: the listen address")
    peer_secret: Secret | None = setting(None, secret=True,
        help="Key authenticating forwards between replicas (HMAC, at least 32 characters, the same on every "
             "replica); unset = derived from mcp_session_secret (one of them is required with peer_listen, and "
             "then at least 32 characters long)")
    mcp_max_streams_per_session: int = setting(4, check=_positive, help="Open GET/listen streams per MCP session")
    mcp_max_streams_per_subject: int = setting(32, check=_positive, help="Open GET/listen streams per subject")
    upstream_sessions_per_backend: int = setting(256, check=_positive,
        help="Per-subject 2025-era backend sessions kept per backend (least recently used ends)")
    upstream_own_connections_per_server: int = setting(8, check=_positive,
        help="Legacy SSE callers with a connection of their own per server (each event stream holds a "
             "stream connection); later callers share the server's one connection (its requests answered by us)")
    upstream_stream_connections: int = setting(1024, check=_positive,
        help="Connections kept for long-lived backend streams (GET streams, subscriptions/listen, legacy SSE "
             "event streams), apart from calls' pool; one more stream is refused at once (503), never queued. "
             "Keep the process's open-file limit above it plus the agents' own connections")
    upstream_stream_connections_per_host: int = setting(256, check=_positive,
        help="Connections kept for long-lived streams to one backend host:port (as many as the per-subject "
             "sessions kept per backend, each with one GET stream); past it a stream is refused at once (503)")
    upstream_session_idle: float = setting(600.0, check=_positive,
        help="Seconds an unused per-subject backend session lives before it is ended")
    upstream_subject_concurrency: int = setting(16, check=_positive,
        help="Requests one subject may have in flight on one backend; more wait their turn. 16 is half the "
             "connections kept per backend (32): one subject never holds them all (at 32 a victim starved), "
             "and one subject at c=50 ran at 0.70x direct against 0.63x with 8 (docs/benchmarks.md)")
    upstream_subject_queue: int = setting(64, check=_not_negative,
        help="Requests one subject may have waiting per backend beyond the concurrency; more are refused (503)")
    header_timeout: float = setting(10.0, check=_positive,
        help="Seconds a client may take to send a request's headers (slowloris guard)")
    body_timeout: float = setting(30.0, check=_positive,
        help="Seconds a client may take to send a request's body (408 after)")
    # stdio backends (`type: stdio` in the servers file) — see docs/upstream.md.
    stdio_max_memory_mb: int = setting(4096, check=_not_negative, help="Address-space limit of each stdio server process, MiB (0 = none)")
    stdio_max_open_files: int = setting(1024, check=_not_negative, help="Open-file limit of each stdio server process (0 = inherit)")
    stdio_max_cpu_seconds: int = setting(0, check=_not_negative, help="CPU-time limit of each stdio server process, s (0 = none)")
    stdio_stop_grace: float = setting(5.0, check=_positive, help="Seconds between SIGTERM and SIGKILL when a stdio server is stopped")
    stdio_restart_backoff_max: float = setting(30.0, check=_positive, help="Longest wait before restarting a crashed stdio server, s")
    stdio_healthy_seconds: float = setting(30.0, check=_positive, help="Uptime after which a stdio server's crash count resets, s")
    stdio_stderr_lines_per_second: float = setting(20.0, check=_positive, help="stderr lines per second logged per stdio server (excess dropped)")
    oauth_authorization_servers: list[str] = setting([], help="Authorization servers to advertise (default: issuer)")
    oauth_scopes: list[str] = setting([], help="scopes_supported in the protected-resource metadata")

    @property
    def auth_off(self) -> bool:
        """True when requests are not authenticated (explicit dev mode)."""
        return self.no_auth or not self.auth_enabled


def _http_url(value: str | None) -> bool:
    if not value:
        return False
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def is_loopback(host: str) -> bool:
    """True for a listen address only this machine can reach."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def split_address(text: str) -> tuple[str, int] | None:
    """`host:port` (`[v6]:port`) as (host, port); None when it is not one."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return (host, int(port)) if host and " " not in host else None


def _peer_errors(settings: GatewaySettings) -> list[str]:
    """The peer channel's settings that do not fit together."""
    listen = split_address(settings.peer_listen) if settings.peer_listen else None
    advertise = split_address(settings.peer_advertise) if settings.peer_advertise else None
    errors = []
    if settings.peer_listen and listen is None:
        errors.append(f"peer_listen ({PREFIX}PEER_LISTEN): must be host:port")
    if settings.peer_advertise and advertise is None:
        errors.append(f"peer_advertise ({PREFIX}PEER_ADVERTISE): must be host:port")
    if settings.peer_advertise and not settings.peer_listen:
        errors.append(f"peer_advertise ({PREFIX}PEER_ADVERTISE): needs {PREFIX}PEER_LISTEN")
    if settings.peer_listen and settings.peer_secret is None and settings.mcp_session_secret is None:
        errors.append(f"peer_secret ({PREFIX}PEER_SECRET): required with {PREFIX}PEER_LISTEN (or "
                      f"{PREFIX}MCP_SESSION_SECRET to derive it from); the same on every replica")
    if settings.peer_secret is not None and len(settings.peer_secret.get()) < 32:
        errors.append(f"peer_secret ({PREFIX}PEER_SECRET): at least 32 characters")
    session = settings.mcp_session_secret
    channel = settings.peer_listen or settings.workers > 1  # --workers gives each worker a peer listener
    if channel and settings.peer_secret is None and session is not None and len(session.get()) < 32:
        # Agents see route ids sealed with the derived key: a short secret could be guessed offline.
        errors.append(f"mcp_session_secret ({PREFIX}MCP_SESSION_SECRET): at least 32 characters when it keys the "
                      f"peer channel ({PREFIX}PEER_LISTEN or {PREFIX}WORKERS, without {PREFIX}PEER_SECRET)")
    if listen is not None and advertise is None and listen[0] in ("0.0.0.0", "::"):
        errors.append(f"peer_advertise ({PREFIX}PEER_ADVERTISE): required when the peer listener binds every "
                      "address; other replicas must be told where to reach this one")
    if listen is not None and listen[1] != 0 and settings.workers > 1:
        errors.append(f"peer_listen ({PREFIX}PEER_LISTEN): each worker needs a port of its own; use port 0")
    return errors


def finalize(settings: GatewaySettings) -> GatewaySettings:
    """Derive legacy values (Keycloak issuer, no-auth) and check cross-field rules; list all errors."""
    errors: list[str] = []
    changes: dict[str, Any] = {}
    issuer = settings.issuer
    if settings.workers > 1 and settings.port == 0:
        errors.append(f"workers ({PREFIX}WORKERS): several workers share one fixed port; port 0 gives each its own")
    if settings.keycloak_url or settings.keycloak_realm:
        if not (settings.keycloak_url and settings.keycloak_realm):
            errors.append("keycloak_url/keycloak_realm (KEYCLOAK_URL, KEYCLOAK_REALM): set both or neither")
        elif not issuer:
            issuer = f"{settings.keycloak_url.rstrip('/')}/realms/{settings.keycloak_realm}"
            changes["issuer"] = issuer
    if settings.auth_off:
        changes["no_auth"] = True
        changes["auth_enabled"] = False
        if not is_loopback(settings.host) and not settings.no_auth_allow_remote:
            errors.append(
                f"host ({PREFIX}HOST): no-auth mode listens on loopback only; set {PREFIX}NO_AUTH_ALLOW_REMOTE=true "
                "to expose an unauthenticated gateway anyway"
            )
    else:
        if settings.environment != "development" and not settings.public_url:
            errors.append(
                f"public_url ({PREFIX}PUBLIC_URL): required when auth is enabled outside development "
                f"({PREFIX}ENVIRONMENT=development); the OAuth metadata must not echo the Host header"
            )
        if not issuer and not settings.jwks_url:
            errors.append(
                f"issuer ({PREFIX}ISSUER): auth is enabled, so an issuer or a JWKS URL "
                f"({PREFIX}JWKS_URL) is required (or --no-auth for development)"
            )
        if not settings.audience:
            errors.append(f"audience ({PREFIX}AUDIENCE): required when auth is enabled")
    for name, value in (("issuer", issuer), ("jwks_url", settings.jwks_url), ("public_url", settings.public_url)):
        if value and not _http_url(value):
            errors.append(f"{name} ({PREFIX}{name.upper()}): must be an http(s) URL")
    if not _http_url(settings.pdp_url):
        errors.append(f"pdp_url ({PREFIX}PDP_URL): must be an http(s) URL")
    errors += _peer_errors(settings)
    if errors:
        raise SettingsError(errors)
    return dataclasses.replace(settings, **changes) if changes else settings


def load_gateway_settings(
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    yaml_file: Path | None = None,
    dotenv: Path | None = Path(".env"),
) -> GatewaySettings:
    """Load from all sources, then `finalize`; raises SettingsError naming every bad field."""
    return load_settings(
        GatewaySettings, PREFIX, environ=environ, overrides=overrides, yaml_file=yaml_file,
        dotenv=dotenv, finalize=finalize,
    )
