"""Database mode and the policy file: followed as new audited versions, or reported when it drifts."""

from __future__ import annotations

import logging
import re

from pdp.app import create_app
from shared import authzen
from tests.integration.pdp_helpers import POLICY, eventually, pdp_settings, tool_eval

OPEN = POLICY.replace("default_policy: deny", "default_policy: allow")


async def answer(client) -> tuple[str, bool]:
    body = await (await client.post(authzen.EVALUATION_PATH, json=tool_eval("nobody", "s", "t"))).json()
    return body["context"]["policy_version"], body["decision"]


async def test_followed_file_edits_become_new_audited_versions(tmp_path, pg_dsn, pg_pool, aiohttp_client):
    settings = pdp_settings(tmp_path, pg_dsn, policy_follow_file=True, watch_interval=0.02, watch_settle=0.05)
    client = await aiohttp_client(create_app(settings))
    assert await answer(client) == ("v1", False)
    settings.policy_path.write_text(OPEN)

    async def served():
        return await answer(client) == ("v2", True)

    await eventually(served)
    row = await pg_pool.fetchrow("SELECT author, status FROM policy_versions WHERE version = 2")
    assert row["author"] == f"file:{settings.policy_path}" and row["status"] == "active"

    async def audited():
        return await pg_pool.fetch("SELECT subject, action, policy_version, extra FROM audit_events "
                                   "WHERE event_type = 'policy_change' AND policy_version = 'v2'")

    rows = await eventually(audited)
    assert rows[0]["action"] == "file_change" and rows[0]["policy_version"] == "v2"
    assert "+default_policy: allow" in rows[0]["extra"]

    # An invalid edit is not stored; the next good one is.
    settings.policy_path.write_text(OPEN.replace("mcp_server:", "mcp_srv:"))
    settings.policy_path.write_text(POLICY)

    async def back():
        return await answer(client) == ("v3", False)

    await eventually(back)
    assert await pg_pool.fetchval("SELECT count(*) FROM policy_versions") == 3


async def test_edits_made_while_stopped_apply_at_start(tmp_path, pg_dsn, aiohttp_client):
    first = pdp_settings(tmp_path, pg_dsn, policy_follow_file=True)
    client = await aiohttp_client(create_app(first))
    assert await answer(client) == ("v1", False)
    await client.close()
    first.policy_path.write_text(OPEN)
    client = await aiohttp_client(create_app(first))
    assert await answer(client) == ("v2", True)


async def test_drift_is_reported_when_not_following(tmp_path, pg_dsn, aiohttp_client, caplog):
    settings = pdp_settings(tmp_path, pg_dsn)
    client = await aiohttp_client(create_app(settings))
    await client.close()
    settings.policy_path.write_text(OPEN)
    with caplog.at_level(logging.ERROR, logger="pdp.filesync"):
        client = await aiohttp_client(create_app(settings))
    assert await answer(client) == ("v1", False)  # the file is not in force ...
    why = [r.getMessage() for r in caplog.records if r.name == "pdp.filesync"]
    assert len(why) == 1 and "NOT in effect" in why[0] and "v1" in why[0]  # ... and says so


async def reloads(client, outcome: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf'^mcpgw_pdp_policy_reloads_total\{{outcome="{outcome}"\}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_rejected_file_edits_count_as_failed_reloads(tmp_path, pg_dsn, aiohttp_client, caplog):
    """A followed file that does not validate (or is not text) never reaches the engine, so the
    follower counts it: the McpgwPolicyReloadFailed alert must fire for it."""
    settings = pdp_settings(tmp_path, pg_dsn, policy_follow_file=True, watch_interval=0.02, watch_settle=0.05)
    client = await aiohttp_client(create_app(settings))
    assert await reloads(client, "ok") == 1 and await reloads(client, "failed") == 0
    with caplog.at_level(logging.ERROR, logger="pdp.filewatch"):
        settings.policy_path.write_text(POLICY + "bogus: 1\n")

        async def counted():
            return await reloads(client, "failed") == 1

        await eventually(counted)
        assert any("rejected; keeping the active policy" in r.getMessage() for r in caplog.records)
        settings.policy_path.write_bytes(POLICY.encode() + b"# caf\xc3")

        async def counted_again():
            return await reloads(client, "failed") == 2

        await eventually(counted_again)
    assert await answer(client) == ("v1", False) and await reloads(client, "ok") == 1
