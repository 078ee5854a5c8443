"""Casbin in the production loop: live decisions re-decided by pycasbin; drift fails readiness."""

from __future__ import annotations

from pdp.app import create_app
from pdp.keys import SHADOW, STATE
from shared import authzen
from shared.keys import DB_POOL
from tests.integration.pdp_helpers import eventually, pdp_settings, tool_eval


async def test_live_decisions_are_rechecked_and_drift_is_reported(pg_dsn, tmp_path, aiohttp_client):
    settings = pdp_settings(tmp_path, pg_dsn, shadow_sample=1.0, shadow_fail_readiness=True)
    client = await aiohttp_client(create_app(settings))
    shadow = client.app[SHADOW]
    for body in (tool_eval("dev@example.com", "dev-server", "x"), tool_eval("admin@example.com", "prod-server", "db_delete")):
        assert (await client.post(authzen.EVALUATION_PATH, json=body)).status == 200
    await shadow.queue.join()
    assert shadow.disagreements == 0
    assert (await client.get("/readyz")).status == 200
    metrics = await (await client.get("/metrics")).text()
    assert 'mcpgw_pdp_shadow_checks_total{result="agree"} 2.0' in metrics

    # Simulate fast-path drift: the cached answer for the prod delete becomes the admin role's allow.
    engine = client.app[STATE].current.engine
    admin_allow = next(s for s in engine.compiled.statements if s.kind == "role" and s.role == "admin")
    for key, stmt in list(engine._cache.items()):
        if stmt.effect == "deny":
            engine._cache[key] = admin_allow
    body = await (await client.post(authzen.EVALUATION_PATH,
                                    json=tool_eval("admin@example.com", "prod-server", "db_delete"))).json()
    assert body["decision"] is True  # the drifted answer went out ...
    await shadow.queue.join()
    assert shadow.disagreements == 1  # ... and Casbin caught it
    ready = await client.get("/readyz")
    assert ready.status == 503 and "disagreed" in (await ready.json())["problems"][0]
    assert 'mcpgw_pdp_shadow_checks_total{result="disagree"} 1.0' in await (await client.get("/metrics")).text()
    pool = client.app[DB_POOL]
    row = await eventually(lambda: pool.fetchrow(
        "SELECT * FROM audit_events WHERE event_type = 'policy_shadow_disagreement'"))
    assert row["policy_version"] == "v1" and row["tool"] == "db_delete" and "Block dangerous" in row["reason"]


async def test_sample_rate_zero_rechecks_nothing(tmp_path, aiohttp_client):
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False, shadow_sample=0.0)
    client = await aiohttp_client(create_app(settings))
    assert (await client.post(authzen.EVALUATION_PATH, json=tool_eval("dev@example.com", "dev-server", "x"))).status == 200
    assert client.app[SHADOW].queue.qsize() == 0
    assert 'mcpgw_pdp_shadow_checks_total{result="agree"}' not in await (await client.get("/metrics")).text()
