"""The dev stack's people and clients: who can sign in to the dev issuer, with which roles.

Agent users exercise the gateway's policy (policies/policy.yaml defines `admin` and `agent`);
console users carry the PDP console's roles. Everyone shares one password: the issuer listens on
loopback only and exists so that a newcomer can see an allow, a deny and an expiry in five minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

DEV_PASSWORD = "dev"
CLI_CLIENT_ID = "mcpgw-cli"
CLI_CLIENT_SECRET = "dev-cli-secret"
CONSOLE_CLIENT_ID = "mcpgw-console"
DEFAULT_TTL = 8 * 3600


@dataclass(frozen=True)
class DevUser:
    """One person of the dev realm."""

    name: str
    roles: tuple[str, ...]
    about: str
    ttl: int = DEFAULT_TTL

    @property
    def email(self) -> str:
        """A mail address, shaped like a real IdP's."""
        return f"{self.name}@example.com"


USERS: dict[str, DevUser] = {u.name: u for u in (
    DevUser("alice", ("admin",), "every tool, delete_records included"),
    DevUser("bob", ("agent",), "demo tools; delete_records is denied by policy"),
    DevUser("temp", ("agent",), "like bob, but tokens expire after 60 s", ttl=60),
    DevUser("viewer", ("policy-viewer",), "PDP console: read policy"),
    DevUser("editor", ("policy-editor",), "PDP console: draft policy"),
    DevUser("approver", ("policy-approver",), "PDP console: approve policy"),
)}

# The client-credentials grant of the CLI client acts as this service account (Keycloak's naming).
SERVICE_ACCOUNT = DevUser("service-account-" + CLI_CLIENT_ID, ("agent",), "client credentials")


@dataclass(frozen=True)
class DevClient:
    """An OAuth client; `secret` None means a public client (PKCE required)."""

    client_id: str
    secret: str | None
    grants: frozenset[str]


CLIENTS: dict[str, DevClient] = {c.client_id: c for c in (
    DevClient(CLI_CLIENT_ID, CLI_CLIENT_SECRET,
              frozenset({"password", "client_credentials", "authorization_code"})),
    DevClient(CONSOLE_CLIENT_ID, None, frozenset({"authorization_code"})),
)}
