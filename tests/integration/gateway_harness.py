"""A whole gateway stack on loopback for integration tests: OIDC issuer, PDP, SDK backends, gateway.

The PDP is the real `pdp.app` when it is importable; otherwise a small AuthZEN server reading the
same policy YAML subset (roles with permissions, user_roles, deny rules by tool regex) stands in.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import re
import textwrap
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml
from aiohttp import web

from gateway.app import create_app
from gateway.settings import GatewaySettings, load_gateway_settings
from shared.keys import AUDIT
from shared.settings import Secret, load_settings
from tests.fixtures.oidc import OidcIssuer, running_issuer

AUDIENCE = "mcpgw"
POLICY = """
roles:
  admin:
    permissions:
      - resource: "*"
        actions: ["*"]
  developer:
    permissions:
      - resource: "mcp:*:*"
        actions: ["list_servers", "list_tools", "server_info"]
      - resource: "mcp:alpha:*"
        actions: ["invoke_tool"]
      - resource: "mcp:beta:echo"
        actions: ["invoke_tool"]
user_roles:
  admin@example.com: [admin]
  dev@example.com: [developer]
rules:
  - name: "Block deletes"
    condition:
      tool_name_pattern: ".*delete.*"
    action: deny
    priority: 100
default_policy: deny
"""


async def start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run `app` on 127.0.0.1:0; return its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def _stub_pdp(policy: dict[str, Any]) -> web.Application:
    """AuthZEN stand-in: role permissions with fnmatch globs, regex deny rules first."""

    def decide(subject: dict[str, Any], action: str, resource: dict[str, Any]) -> dict[str, Any]:
        props = resource.get("properties", {})
        server, tool = props.get("mcp_server"), props.get("tool")
        name = f"mcp:{server}:{tool or '*'}"
        for rule in policy.get("rules", []):
            pattern = rule["condition"].get("tool_name_pattern")
            if tool and pattern and re.fullmatch(pattern, tool):
                return {"decision": False, "context": {"decision_id": "stub", "policy_version": "stub-1", "reason": f"rule: {rule['name']}"}}
        roles = set(policy.get("user_roles", {}).get(subject["id"], [])) | set(subject.get("properties", {}).get("roles", []))
        for role in roles:
            for perm in policy["roles"].get(role, {}).get("permissions", []):
                if (perm["resource"] == "*" or fnmatch.fnmatchcase(name, perm["resource"])) and (
                    "*" in perm["actions"] or action in perm["actions"]
                ):
                    return {"decision": True, "context": {"decision_id": "stub", "policy_version": "stub-1", "reason": f"role {role}"}}
        return {"decision": False, "context": {"decision_id": "stub", "policy_version": "stub-1", "reason": "no permission grants this"}}

    async def one(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(decide(body["subject"], body["action"]["name"], body["resource"]))

    async def many(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response({"evaluations": [
            decide(body["subject"], e["action"]["name"], e["resource"]) for e in body["evaluations"]
        ]})

    async def search(request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for cid in body["context"]["candidates"]:
            server, _, tool = cid.partition(":")
            res = {"type": "mcp_tool", "id": cid, "properties": {"mcp_server": server, "tool": tool}}
            if decide(body["subject"], "invoke_tool", res)["decision"]:
                results.append({"type": "mcp_tool", "id": cid})
        return web.json_response({"results": results, "context": {"policy_version": "stub-1"}})

    app = web.Application()
    app.router.add_post("/access/v1/evaluation", one)
    app.router.add_post("/access/v1/evaluations", many)
    app.router.add_post("/access/v1/search/resource", search)
    return app


async def start_pdp(policy_file: Path, pg_dsn: str, extra_env: dict[str, str] | None = None) -> tuple[web.AppRunner, str]:
    """The real PDP if it exists, else the stand-in."""
    try:
        from pdp.app import create_app as create_pdp
        from pdp.settings import PdpSettings, check_settings
    except ImportError:
        return await start_site(_stub_pdp(yaml.safe_load(policy_file.read_text())))  # noqa: ASYNC240
    env = {
        "DATABASE_URL": pg_dsn,
        "MCPGW_PDP_POLICY_FILE": str(policy_file),
        "MCPGW_PDP_POLICY_SOURCE": "file",
        "MCPGW_AUDIT_POSTGRES": "false",  # gateway rows only in these tests' audit table
        **(extra_env or {}),
    }
    settings = check_settings(load_settings(PdpSettings, "MCPGW_PDP_", environ=env, dotenv=None))
    return await start_site(create_pdp(settings))


@dataclass
class Stack:
    """Handles on a running stack."""

    url: str
    issuer: OidcIssuer
    pdp: web.AppRunner
    pdp_url: str
    settings: GatewaySettings
    audit_file: Path
    session: aiohttp.ClientSession
    app: web.Application
    backends: dict[str, Any] = field(default_factory=dict)

    def token(self, subject: str, roles: tuple[str, ...] = ()) -> str:
        """A valid access token for `subject`."""
        return self.issuer.mint(subject, username=subject, roles=roles, audience=AUDIENCE)

    def headers(self, subject: str | None = "admin@example.com") -> dict[str, str]:
        """Authorization header for `subject` (empty for None)."""
        return {} if subject is None else {"Authorization": f"Bearer {self.token(subject)}"}

    async def call(self, method: str, path: str, subject: str | None = "admin@example.com", **kw: Any) -> tuple[int, Any, Any]:
        """(status, JSON body or text, headers) of one request to the gateway."""
        headers = {**self.headers(subject), **kw.pop("headers", {})}
        async with self.session.request(method, self.url + path, headers=headers, **kw) as resp:
            text = await resp.text()
            try:
                body: Any = await resp.json(content_type=None)
            except ValueError:
                body = text
            return resp.status, body, resp.headers


def servers_yaml(backends: dict[str, dict[str, Any]]) -> str:
    """An mcp_servers.yaml for `{name: {url, tags?, tools?, timeout?, enabled?}}`."""
    return yaml.safe_dump({"servers": {n: {"type": "http", **cfg} for n, cfg in backends.items()}})


@contextlib.asynccontextmanager
async def gateway_stack(
    tmp_path: Path,
    pg_dsn: str,
    backends: dict[str, dict[str, Any]],
    *,
    policy: str = POLICY,
    env: dict[str, str] | None = None,
    pdp_env: dict[str, str] | None = None,
    configure: Callable[[web.Application], None] | None = None,
) -> AsyncIterator[Stack]:
    """Start issuer, PDP and gateway (real app on a real socket); tear down in reverse.

    `configure` may change the app before it starts (e.g. add a stage to `keys.CALL_STAGES`)."""
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(textwrap.dedent(policy))
    servers_file = tmp_path / "mcp_servers.yaml"
    servers_file.write_text(servers_yaml(backends))
    audit_file = tmp_path / "audit.jsonl"
    async with running_issuer() as issuer:
        pdp_runner, pdp_url = await start_pdp(policy_file, pg_dsn, pdp_env)
        try:
            settings = load_gateway_settings(
                environ={
                    "DATABASE_URL": pg_dsn,
                    "MCPGW_DATA_DIR": str(tmp_path / "data"),
                    "AUDIT_LOG_FILE": str(audit_file),
                    "MCPGW_AUDIT_FLUSH_INTERVAL": "0.05",
                    "MCPGW_GATEWAY_ISSUER": issuer.issuer,
                    "MCPGW_GATEWAY_AUDIENCE": AUDIENCE,
                    "MCPGW_GATEWAY_PDP_URL": pdp_url,
                    "MCPGW_GATEWAY_SERVERS_FILE": str(servers_file),
                    # The port is known only once bound: the metadata names the request's Host.
                    "MCPGW_GATEWAY_ENVIRONMENT": "development",
                    **(env or {}),
                },
                dotenv=None,
            )
            app = create_app(settings)
            if configure is not None:
                configure(app)
            runner, url = await start_site(app)
            try:
                async with aiohttp.ClientSession() as session:
                    yield Stack(url, issuer, pdp_runner, pdp_url, settings, audit_file, session, app)
            finally:
                await runner.cleanup()
        finally:
            await pdp_runner.cleanup()


__all__ = ["AUDIENCE", "POLICY", "Secret", "Stack", "gateway_stack", "start_site"]


def caller_request_id(row: asyncpg.Record) -> str | None:
    """The X-Request-ID the caller sent, as the audit row keeps it (apart from our request id)."""
    extra = row["extra"]
    return (json.loads(extra) if isinstance(extra, str) else extra or {}).get("caller_request_id")


async def audit_rows(stack: Stack, dsn: str) -> list[asyncpg.Record]:
    """Every audit row written so far (after flushing the gateway's emitter)."""
    await stack.app[AUDIT].flush()
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT * FROM audit_events ORDER BY id")
    finally:
        await conn.close()
