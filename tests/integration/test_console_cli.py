"""`mcpgw policy show|diff|activate|rollback|impact|block` and `explain --live` against a live PDP."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from aiohttp import web

from pdp.app import create_app
from tests.fixtures.oidc import running_issuer
from tests.integration.pdp_helpers import POLICY, eventually, pdp_settings, tool_eval

WIDER = POLICY.replace("  dev@example.com: [developer]\n", "  dev@example.com: [developer]\n  ann@example.com: [admin]\n")


@pytest.fixture
async def live(tmp_path, pg_dsn):
    async with running_issuer() as issuer:
        settings = pdp_settings(tmp_path, pg_dsn, admin_issuer=issuer.issuer, admin_audience="mcpgw-admin",
                                audit_flush_interval=0.02)
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        token = issuer.mint("ops@example.com", roles=("policy-admin",), audience="mcpgw-admin")
        second = issuer.mint("sec@example.com", roles=("policy-admin",), audience="mcpgw-admin")
        try:
            yield url, token, runner.app, second
        finally:
            await runner.cleanup()


async def mcpgw(url: str, token: str, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcpgw.cli", "policy", *args, "--pdp-url", url, *(["--token", token] if token else []),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_show_diff_impact_activate_rollback_block_and_explain_live(live, tmp_path):
    url, token, app, second = live
    code, out, _ = await mcpgw(url, token, "show")
    assert code == 0 and out == POLICY
    wider = tmp_path / "wider.yaml"
    wider.write_text(WIDER)
    code, out, _ = await mcpgw(url, token, "diff", str(wider))
    assert code == 1 and "binding added: user 'ann@example.com' bound to role 'admin'" in out and "+  ann@" in out
    # Explain live: one audited deny for ann, then impact shows it would flip.
    code, out, _ = await mcpgw(url, "", "explain", "--live", "--subject", "ann@example.com", "--resource", "s:t",
                               "--action", "invoke_tool")
    assert code == 1 and json.loads(out)["decision"] == "deny" and json.loads(out)["policy_version"] == "v1"

    async def audited():
        from shared.keys import DB_POOL
        return await app[DB_POOL].fetchval("SELECT count(*) FROM audit_events WHERE subject = 'ann@example.com'")
    await eventually(audited)
    code, out, _ = await mcpgw(url, token, "impact", str(wider), "--json")
    body = json.loads(out)
    assert code == 0 and body["flips"] == {"deny→allow": 1} and body["by_user"][0]["subject"] == "ann@example.com"
    code, out, err = await mcpgw(url, token, "block", "--user", "eve@example.com", "--reason", "incident 7")
    assert code == 0 and "active: v2" in out, err
    code, out, _ = await mcpgw(url, token, "show")
    assert "emergency-block: user eve@example.com" in out
    # A rollback needs a second approver: the first ask waits, the asker cannot confirm it alone.
    code, out, err = await mcpgw(url, token, "rollback", "--reason", "block was wrong")
    assert code == 0 and "rollback to v1 is waiting for review (draft 1)" in out, err
    code, out, _ = await mcpgw(url, token, "show")
    assert "emergency-block: user eve@example.com" in out
    code, _, err = await mcpgw(url, token, "rollback")
    assert code == 1 and "403" in err and "contributors: ops@example.com" in err
    code, out, err = await mcpgw(url, second, "rollback", "--to", "v1")
    assert code == 0 and "active: v3 (was v2)" in out, err
    code, out, _ = await mcpgw(url, token, "show")
    assert out == POLICY
    code, _, err = await mcpgw(url, token, "rollback", "--to", "x")
    assert code == 2 and "--to must be a version number" in err
    code, out, _ = await mcpgw(url, token, "activate", "v2")
    assert code == 0 and "active: v2" in out
    code, out, _ = await mcpgw(url, token, "diff", "--version", "1")
    assert code == 1 and "rule removed: rule 'emergency-block: user eve@example.com' removed" in out
    code, _, err = await mcpgw(url, token, "block", "--server", "prod*", "--reason", "x")
    assert code == 1 and "exact name" in err
    code, _, err = await mcpgw(url, "", "show")
    assert code == 2 and "no admin token" in err


async def test_first_import_is_an_audited_change(live):
    url, token, app, _ = live
    from shared.keys import DB_POOL

    async def imported():
        return await app[DB_POOL].fetchrow(
            "SELECT subject, policy_version FROM audit_events WHERE event_type = 'policy_change' AND action = 'import'")
    row = await eventually(imported)
    assert row["policy_version"] == "v1" and row["subject"] == "mcpgw-pdp"


def test_tool_eval_helper_is_shared():
    assert tool_eval("a", "s", "t")["action"]["name"] == "invoke_tool"
