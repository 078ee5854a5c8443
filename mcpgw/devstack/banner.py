"""What `make run` prints once everything answers: only things that are true of this stack."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mcpgw.devstack.users import DEV_PASSWORD, USERS


@dataclass(frozen=True)
class StackInfo:
    """Where everything runs and which files are live."""

    gateway: str
    pdp: str
    backend: str
    issuer: str
    policy_file: Path
    servers_file: Path
    servers_state: str
    cli_config: Path
    pgdata: Path
    no_auth: bool
    dev_roles: str
    # The gateway's clock-skew allowance (MCPGW_GATEWAY_LEEWAY): a token is accepted this long past `exp`.
    leeway: float


ADMIN_TOKEN = "the dev token below: role admin"
# --no-auth is the gateway's alone: the PDP's admin API still checks tokens from the dev issuer.
ADMIN_TOKEN_NO_AUTH = "still needs a token, role admin: MCPGW_TOKEN=$(.venv/bin/mcpgw token --user alice)"


def expiry(leeway: float) -> str:
    """When temp's token stops working: its `exp`, plus the clock skew the gateway allows."""
    ttl = USERS["temp"].ttl
    if not leeway:
        return f"the token expires after {ttl} s: 401 from then on"
    return (f"the token expires after {ttl} s; the gateway allows {leeway:g} s of clock skew "
            f"(MCPGW_GATEWAY_LEEWAY), so 401 from {ttl + leeway:g} s on")


def _users() -> str:
    return "\n".join(f"    {u.name:<9}{', '.join(u.roles):<17}{u.about}" for u in USERS.values())


def banner(info: StackInfo, token: str | None) -> str:
    """The few lines a newcomer needs (no token and no Authorization headers when auth is off)."""
    g = info.gateway
    head = [
        "",
        "mcpgw is running (Ctrl-C stops everything, the embedded Postgres included)",
        f"  gateway   {g}        MCP endpoint: {g}/mcp",
        f"  PDP       {info.pdp}",
        f"  console   {info.pdp}/console/   (policy console: sign in at the dev issuer as viewer, editor or"
        f" approver, password \"{DEV_PASSWORD}\")",
        f"  admin API {info.pdp}/admin/v1/policy   ({ADMIN_TOKEN_NO_AUTH if info.no_auth else ADMIN_TOKEN})",
        f"  policy    {info.policy_file} - followed: each saved change becomes a new active, audited version",
        f"  servers   {info.servers_file} ({info.servers_state}) - watched; `mcpgw register-mcp` edits this file",
        f"  backend   {info.backend}   (demo MCP server, registered as \"demo\")",
        f"  issuer    {info.issuer}   (dev OIDC issuer)",
        f"  audit     table audit_events in the embedded Postgres under {info.pgdata}",
        "",
        "For the mcpgw command line (gateway URL, PDP URL and the dev identity provider):",
        f"  export MCPGW_CONFIG={info.cli_config}",
        f"  export MCPGW_URL={g}",
    ]
    if info.no_auth:
        return "\n".join([
            *head, "",
            "!!! AUTHENTICATION IS OFF (--no-auth): no token is checked; every caller is subject \"dev\"",
            f"!!! with roles [{info.dev_roles}]. GET {g}/health says \"auth_enabled\": false.",
            "",
            "Try:",
            f"  curl -s {g}/mcp/servers",
            f"  curl -s -H 'Content-Type: application/json' -d '{{\"tool_name\": \"delete_records\", "
            f"\"parameters\": {{\"table\": \"t\"}}}}' '{g}/mcp/invoke?mcp_server=demo'   # denied by policy",
            "",
        ])
    return "\n".join([
        *head, "",
        "Dev token (alice, role admin, 8 h):",
        f"  export MCPGW_TOKEN={token}",
        f"Dev users (password \"{DEV_PASSWORD}\"; a token for one: .venv/bin/mcpgw token --user NAME):",
        _users(),
        "",
        "Try:",
        f"  curl -s -H \"Authorization: Bearer $MCPGW_TOKEN\" {g}/mcp/servers",
        f"  curl -s -H \"Authorization: Bearer $MCPGW_TOKEN\" '{g}/mcp/list-tools?mcp_server=demo'",
        "  curl -s -H \"Authorization: Bearer $MCPGW_TOKEN\" -H 'Content-Type: application/json' \\",
        f"       -d '{{\"tool_name\": \"echo\", \"parameters\": {{\"text\": \"hi\"}}}}' '{g}/mcp/invoke?mcp_server=demo'",
        "  .venv/bin/mcpgw list-tools demo",
        "  MCPGW_TOKEN=$(.venv/bin/mcpgw token --user bob) .venv/bin/mcpgw invoke demo delete_records \\",
        "       --params '{\"table\": \"t\"}'        # denied: rule \"Agents may not delete records\"",
        "  MCPGW_TOKEN=$(.venv/bin/mcpgw token --user temp) .venv/bin/mcpgw list-tools demo",
        f"       # {expiry(info.leeway)}",
        "",
    ])
