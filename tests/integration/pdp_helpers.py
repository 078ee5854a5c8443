"""Helpers for the PDP integration tests: settings for a real app on a fresh database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from pdp.settings import PdpSettings
from shared.settings import Secret

ROOT = Path(__file__).resolve().parents[2]
POLICY = (ROOT / "policies" / "policy.yaml").read_text()


def pdp_settings(tmp_path: Path, dsn: str | None, **changes: Any) -> PdpSettings:
    """Settings for a test PDP (sidecar mode, database source, audit to Postgres)."""
    policy = tmp_path / "policy.yaml"
    if not policy.exists():
        policy.write_text(POLICY)
    values: dict[str, Any] = {
        "database_url": Secret(dsn) if dsn else None, "data_dir": tmp_path, "policy_file": policy,
        "audit_flush_interval": 0.05, "log_format": "text",
        "shadow_sample": 1.0,  # every decision re-decided by stock Casbin in tests
    }
    values.update(changes)
    return PdpSettings(**values)


def tool_eval(subject: str, server: str, tool: str, roles=(), groups=(), arguments=None, **ctx: Any) -> dict[str, Any]:
    """An AuthZEN evaluation body for invoke_tool."""
    context = dict(ctx)
    if arguments is not None:
        context["arguments"] = arguments
    return {"subject": {"type": "user", "id": subject, "properties": {"roles": list(roles), "groups": list(groups)}},
            "action": {"name": "invoke_tool"},
            "resource": {"type": "mcp_tool", "id": f"{server}:{tool}", "properties": {"mcp_server": server, "tool": tool}},
            "context": context}


async def eventually(check, within: float = 5.0, interval: float = 0.02):
    """Poll an async check until it returns a truthy value (or fail after `within` seconds)."""
    deadline = asyncio.get_running_loop().time() + within
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(interval)
