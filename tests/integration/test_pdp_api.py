"""AuthZEN API of a real PDP app on a fresh Postgres: evaluation, batch, search, metadata, audit."""

from __future__ import annotations

import json

import pytest

from pdp.app import create_app
from shared import authzen
from tests.integration.pdp_helpers import eventually, pdp_settings, tool_eval


@pytest.fixture
async def client(pg_dsn, tmp_path, aiohttp_client):
    # pg_dsn first: fixtures tear down in reverse, so the app closes before its database is dropped
    return await aiohttp_client(create_app(pdp_settings(tmp_path, pg_dsn)))


async def test_single_evaluation_allow_and_deny_with_context(client):
    resp = await client.post(authzen.EVALUATION_PATH, json=tool_eval("dev@example.com", "dev-server", "x"))
    assert resp.status == 200
    body = await resp.json()
    decision = authzen.parse_decision(body)
    assert decision.allowed and decision.policy_version == "v1" and len(decision.decision_id) == 32
    assert body["context"]["statement"]["role"] == "developer"
    resp = await client.post(authzen.EVALUATION_PATH, json=tool_eval("admin@example.com", "prod-server", "db_delete"))
    body = await resp.json()
    assert body["decision"] is False
    assert body["context"]["statement"] == {"kind": "rule", "name": "Block dangerous tools in production",
                                            "effect": "deny", "priority": 100}


async def test_gateway_wire_helpers_round_trip(client):
    subject = authzen.subject_to_wire("x", roles=["viewer"])
    body = authzen.evaluation_request(subject, "list_tools", authzen.server_resource("s1"))
    resp = await client.post(authzen.EVALUATION_PATH, json=body)
    assert authzen.parse_decision(await resp.json()).allowed
    body = authzen.evaluation_request(subject, "invoke_tool", authzen.tool_resource("s1", "t"), arguments={"a": 1})
    assert authzen.parse_decision(await (await client.post(authzen.EVALUATION_PATH, json=body)).json()).allowed is False


@pytest.mark.parametrize("body,fragment", [
    ({"action": {"name": "invoke_tool"}}, "subject is required"),
    ({**tool_eval("a", "s", "t"), "action": {"name": "delete"}}, "action.name 'delete'"),
    ({**tool_eval("a", "s", "t"), "resource": {"type": "mcp_server", "id": "s"}}, "resource.type must be 'mcp_tool'"),
    ({**tool_eval("a", "s", "t"), "resource": {"type": "mcp_tool", "id": "s:t", "properties": {"mcp_server": "other"}}},
     "disagrees"),
    ({**tool_eval("a", "s", "t"), "resource": {"type": "mcp_tool", "id": "s:a:b"}}, "must not contain ':'"),
    ({**tool_eval("a", "s", "t"), "context": {"arguments": [1]}}, "context.arguments must be an object"),
    ({**tool_eval("a", "s", "t"), "subject": {"id": "a", "properties": {"roles": "admin"}}}, "roles must be a list"),
])
async def test_bad_evaluation_is_400_naming_the_field(client, body, fragment):
    resp = await client.post(authzen.EVALUATION_PATH, json=body)
    assert resp.status == 400
    assert fragment in (await resp.json())["error"]["message"]


async def test_malformed_json_is_400(client):
    resp = await client.post(authzen.EVALUATION_PATH, data=b"{nope", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and "malformed JSON" in (await resp.json())["error"]["message"]


async def test_batch_of_1000_and_semantics(client):
    items = [{"resource": {"type": "mcp_tool", "id": f"dev-server:t{i}"}} for i in range(1000)]
    items[500] = {"resource": {"type": "mcp_tool", "id": "prod-server:t"}}
    base = {"subject": {"type": "user", "id": "dev@example.com"}, "action": {"name": "invoke_tool"}}
    resp = await client.post(authzen.EVALUATIONS_PATH, json={**base, "evaluations": items})
    results = (await resp.json())["evaluations"]
    assert len(results) == 1000 and [i for i, r in enumerate(results) if not r["decision"]] == [500]
    resp = await client.post(authzen.EVALUATIONS_PATH, json={
        **base, "evaluations": items, "options": {"evaluations_semantic": "deny_on_first_deny"}})
    results = (await resp.json())["evaluations"]
    assert len(results) == 501 and results[-1]["decision"] is False
    resp = await client.post(authzen.EVALUATIONS_PATH, json={
        **base, "evaluations": items[499:], "options": {"evaluations_semantic": "permit_on_first_permit"}})
    assert len((await resp.json())["evaluations"]) == 1
    resp = await client.post(authzen.EVALUATIONS_PATH, json={**base, "evaluations": [items[0], {**items[0], "action": 3}]})
    assert resp.status == 400 and "evaluations[1].action" in (await resp.json())["error"]["message"]
    resp = await client.post(authzen.EVALUATIONS_PATH, json={**base, "evaluations": items,
                                                             "options": {"evaluations_semantic": "first"}})
    assert resp.status == 400


async def test_resource_search_filters_candidates(client):
    candidates = [f"dev-server:t{i}" for i in range(5)] + ["prod-server:x", "other:read_only_tool"]
    body = {"subject": {"type": "user", "id": "dev@example.com"}, "action": {"name": "invoke_tool"},
            "resource": {"type": "mcp_tool"}, "context": {"candidates": candidates}}
    resp = await client.post(authzen.SEARCH_RESOURCE_PATH, json=body)
    answer = await resp.json()
    assert [r["id"] for r in answer["results"]] == candidates[:5]
    assert answer["context"]["policy_version"] == "v1"
    body["context"]["candidates"] = ["no-colon"]  # cannot name a tool: never allowed, never a 400 for the rest
    resp = await client.post(authzen.SEARCH_RESOURCE_PATH, json=body)
    assert resp.status == 200 and (await resp.json())["results"] == []


async def test_configuration_health_ready_metrics(client):
    conf = await (await client.get(authzen.CONFIGURATION_PATH)).json()
    assert conf["access_evaluation_endpoint"].endswith(authzen.EVALUATION_PATH)
    assert (await client.get("/healthz")).status == 200
    ready = await (await client.get("/readyz")).json()
    assert ready == {"status": "ready", "problems": [], "policy_version": "v1"}
    await client.post(authzen.EVALUATION_PATH, json=tool_eval("nobody", "s", "t"))
    await client.post(authzen.EVALUATION_PATH, json=tool_eval("nobody", "s", "t"))
    text = await (await client.get("/metrics")).text()
    assert 'mcpgw_pdp_decisions_total{result="deny"} 2.0' in text
    assert 'mcpgw_pdp_decision_cache_total{result="hit"} 1.0' in text
    assert 'mcpgw_pdp_policy_info{sha256=' in text and 'version="v1"' in text
    assert 'mcpgw_pdp_policy_reloads_total{outcome="ok"} 1.0' in text
    assert 'mcpgw_pdp_decision_seconds_count 2.0' in text and 'mcpgw_pdp_decision_seconds_bucket{le=' in text


async def test_every_deny_is_audited_with_decision_id(client, pg_dsn):
    body = tool_eval("nobody", "s", "t", request_id="req-1", client_addr="10.0.0.9")
    answer = await (await client.post(authzen.EVALUATION_PATH, json=body)).json()
    decision_id = answer["context"]["decision_id"]
    pool = client.app[__import__("shared.keys", fromlist=["DB_POOL"]).DB_POOL]

    async def row():
        return await pool.fetchrow("SELECT * FROM audit_events WHERE decision_id = $1", decision_id)

    found = await eventually(row)
    assert (found["service"], found["event_type"], found["decision"]) == ("pdp", "policy_decision", "deny")
    assert (found["subject"], found["client_addr"]) == ("nobody", "10.0.0.9")
    # The PEP's stated request id is kept as the caller's; the row's request id is the PDP's own.
    assert json.loads(found["extra"])["caller_request_id"] == "req-1" and len(found["request_id"]) == 32
    assert found["policy_version"] == "v1" and found["resource"] == "mcp:s:t"


async def test_allow_sampling_zero_audits_denies_only(pg_dsn, tmp_path, aiohttp_client):
    from shared.keys import DB_POOL

    client = await aiohttp_client(create_app(pdp_settings(tmp_path, pg_dsn, audit_allow_sample=0.0)))
    allow = await (await client.post(authzen.EVALUATION_PATH, json=tool_eval("dev@example.com", "dev-server", "x"))).json()
    deny = await (await client.post(authzen.EVALUATION_PATH, json=tool_eval("nobody", "s", "t"))).json()
    pool = client.app[DB_POOL]

    async def deny_row():
        return await pool.fetchval("SELECT count(*) FROM audit_events WHERE decision_id = $1",
                                   deny["context"]["decision_id"])

    await eventually(deny_row)
    assert await pool.fetchval("SELECT count(*) FROM audit_events WHERE decision_id = $1",
                               allow["context"]["decision_id"]) == 0
