"""The demo backend describes its tools truthfully, as the shipped dev policy decides them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcpgw.devstack.demo_backend import build_server
from mcpgw.devstack.users import USERS
from pdp.cases import case_request
from pdp.policy import load_engine

ROOT = Path(__file__).resolve().parents[3]


def allowed(user: str, tool: str) -> bool:
    engine = load_engine((ROOT / "policies" / "policy.yaml").read_text(), "test")
    req = case_request({"subject": USERS[user].email, "roles": list(USERS[user].roles),
                        "resource": f"demo:{tool}", "action": "invoke_tool"}, "test")
    return engine.decide(req).allowed


def test_delete_records_says_who_the_dev_policy_denies_and_allows() -> None:
    tools = {t.name: t for t in asyncio.run(build_server().list_tools())}
    about = tools["delete_records"].description or ""
    assert "prod" not in about
    for user in ("bob", "temp"):
        assert user in about and not allowed(user, "delete_records")
        assert allowed(user, "echo")
    assert "alice" in about and allowed("alice", "delete_records")
    assert '"Agents may not delete records"' in about
    assert "Agents may not delete records" in (ROOT / "policies" / "policy.yaml").read_text()
