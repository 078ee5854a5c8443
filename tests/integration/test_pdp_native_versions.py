"""Native Casbin versions in database mode: validated with line numbers, stored, diffed, activated on
every replica (LISTEN/NOTIFY), rolled back to YAML — the same way as YAML versions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdp.app import create_app
from shared import authzen
from shared.keys import DB_POOL
from tests.fixtures.oidc import oidc_issuer  # noqa: F401
from tests.integration.pdp_helpers import eventually, pdp_settings, tool_eval

ADMIN = "/admin/v1/policy"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "authzen-todo"
MODEL, LINES = (EXAMPLE / "model.conf").read_text(), (EXAMPLE / "policy.csv").read_text()
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"


def _read_todos(subject: str) -> dict:
    return {"subject": {"type": "user", "id": subject}, "action": {"name": "can_read_todos"},
            "resource": {"type": "todo", "id": "todo-1"}}


@pytest.fixture
async def pair(pg_dsn, tmp_path, oidc_issuer, aiohttp_client):  # noqa: F811
    settings = pdp_settings(tmp_path, pg_dsn, admin_issuer=oidc_issuer.issuer, admin_audience=oidc_issuer.audience)
    a = await aiohttp_client(create_app(settings))
    b = await aiohttp_client(create_app(settings))
    return a, b, {"Authorization": "Bearer " + oidc_issuer.mint("alice", roles=["policy-admin"])}


async def _decide(client, body) -> tuple[bool, str]:
    answer = await (await client.post(authzen.EVALUATION_PATH, json=body)).json()
    return answer["decision"], answer["context"]["policy_version"]


async def test_invalid_native_pair_is_422_with_lines_and_changes_nothing(pair):
    a, _, auth = pair
    bad_lines = LINES + "p, viewer, todo\nq, x, y\n"
    resp = await a.post(ADMIN + "/versions", json={"casbin": {"model": MODEL, "policy": bad_lines}}, headers=auth)
    assert resp.status == 422
    errors = (await resp.json())["error"]["errors"]
    n = len(LINES.splitlines())
    assert [(e["path"], e["line"]) for e in errors] == [("policy", n + 1), ("policy", n + 2)]
    assert "p takes 4 field(s), this line has 2" in errors[0]["message"]
    bad_model = MODEL.replace("r.act == p.act", "r.act === p.act")
    resp = await a.post(ADMIN + "/validate", json={"casbin": {"model": bad_model, "policy": LINES}}, headers=auth)
    (error,) = (await resp.json())["error"]["errors"]
    assert resp.status == 422 and error["path"] == "[matchers].m" and error["line"] == MODEL.splitlines().index(
        next(x for x in MODEL.splitlines() if x.startswith("m ="))) + 1
    resp = await a.post(ADMIN + "/versions", json={"yaml": "x", "casbin": {"model": MODEL, "policy": LINES}},
                        headers=auth)
    assert resp.status == 400
    assert (await a.app[DB_POOL].fetchval("SELECT count(*) FROM policy_versions")) == 1


async def test_native_version_lifecycle_across_replicas(pair, oidc_issuer):  # noqa: F811
    a, b, auth = pair
    assert (await _decide(a, tool_eval("dev@example.com", "dev-server", "x"))) == (True, "v1")
    resp = await a.post(ADMIN + "/versions", json={"casbin": {"model": MODEL, "policy": LINES}, "comment": "todo"},
                        headers=auth)
    assert resp.status == 201 and (await resp.json())["policy_version"] == "v2"
    for client in (a, b):  # b hears the NOTIFY and loads the native pair too
        assert await eventually(lambda c=client: _decide_is(c, _read_todos(BETH), (True, "v2")))
    # A YAML request to a native version is denied or refused, never answered by the old YAML.
    answer = await (await a.post(authzen.EVALUATION_PATH, json=tool_eval("dev@example.com", "dev-server", "x"))).json()
    assert answer["decision"] is False
    listed = (await (await a.get(ADMIN + "/versions", headers=auth)).json())["versions"]
    assert [(v["version"], v["kind"]) for v in listed] == [(2, "casbin"), (1, "yaml")]
    got = await (await a.get(ADMIN + "/versions/2", headers=auth)).json()
    assert got["casbin"] == {"model": MODEL, "policy": LINES}
    current = await (await a.get(ADMIN, headers=auth)).json()
    assert current["kind"] == "casbin" and current["casbin"]["model"] == MODEL
    pool = a.app[DB_POOL]
    diff = await eventually(lambda: pool.fetchval(
        "SELECT extra->>'diff' FROM audit_events WHERE event_type = 'policy_change' AND policy_version = 'v2'"))
    assert "+# model.conf" in diff and "+g2, " in diff and "-default_policy: deny" in diff
    # A rollback waits for a second admin, then publishes v1's YAML as v3.
    assert (await a.post(ADMIN + "/rollback", headers=auth)).status == 202
    second = {"Authorization": "Bearer " + oidc_issuer.mint("carol", roles=["policy-admin"])}
    resp = await a.post(ADMIN + "/rollback", headers=second)
    assert resp.status == 200 and (await resp.json())["policy_version"] == "v3"
    for client in (a, b):
        assert await eventually(lambda c=client: _decide_is(c, tool_eval("dev@example.com", "dev-server", "x"),
                                                             (True, "v3")))
    resp = await a.post(ADMIN + "/versions/2/activate", headers=auth)
    assert resp.status == 200 and await _decide_is(a, _read_todos(BETH), (True, "v2"))


async def _decide_is(client, body, expected) -> bool:
    # A replica that has not heard the NOTIFY yet refuses a request its old policy cannot read
    # (400, no decision): not yet, rather than a failure.
    answer = await (await client.post(authzen.EVALUATION_PATH, json=body)).json()
    if "decision" not in answer:
        return False
    return (answer["decision"], answer["context"]["policy_version"]) == expected


async def test_native_decisions_and_searches_are_audited(pair):
    a, _, auth = pair
    resp = await a.post(ADMIN + "/versions", json={"casbin": {"model": MODEL, "policy": LINES}}, headers=auth)
    assert resp.status == 201
    deny = {"subject": {"type": "user", "id": BETH}, "action": {"name": "can_create_todo"},
            "resource": {"type": "todo", "id": "todo-1"}}
    answer = await (await a.post(authzen.EVALUATION_PATH, json=deny)).json()
    assert answer["decision"] is False
    pool = a.app[DB_POOL]
    row = await eventually(lambda: pool.fetchrow("SELECT * FROM audit_events WHERE decision_id = $1",
                                                 answer["context"]["decision_id"]))
    assert (row["subject"], row["action"], row["resource"], row["decision"], row["policy_version"]) == (
        BETH, "can_create_todo", "todo:todo-1", "deny", "v2")
    body = {"subject": {"type": "user", "id": BETH}, "resource": {"type": "todo", "id": "todo-1"}}
    assert (await a.post("/access/v1/search/action", json=body)).status == 200
    row = await eventually(lambda: pool.fetchrow(
        "SELECT * FROM audit_events WHERE action = 'search_action:*' AND subject = $1", BETH))
    assert row["reason"] == "1 of 5 candidates allowed" and row["policy_version"] == "v2"
