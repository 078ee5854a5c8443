"""Admin API with real JWTs from a test issuer, and two PDP replicas sharing one Postgres."""

from __future__ import annotations

import pytest

from pdp.app import create_app
from shared import authzen
from tests.fixtures.oidc import oidc_issuer  # noqa: F401
from tests.integration.pdp_helpers import POLICY, eventually, pdp_settings, tool_eval

ADMIN = "/admin/v1/policy"


def admin_settings(tmp_path, pg_dsn, issuer):
    return pdp_settings(tmp_path, pg_dsn, admin_issuer=issuer.issuer, admin_audience=issuer.audience)


@pytest.fixture
async def pair(pg_dsn, tmp_path, oidc_issuer, aiohttp_client):  # noqa: F811
    a = await aiohttp_client(create_app(admin_settings(tmp_path, pg_dsn, oidc_issuer)))
    b = await aiohttp_client(create_app(admin_settings(tmp_path, pg_dsn, oidc_issuer)))
    return a, b, {"Authorization": "Bearer " + oidc_issuer.mint("alice", roles=["policy-admin"])}


async def _version(client) -> str:
    answer = await (await client.post(authzen.EVALUATION_PATH, json=tool_eval("x", "s", "t"))).json()
    return answer["context"]["policy_version"]


async def test_admin_requires_admin_role(pair, oidc_issuer):  # noqa: F811
    a, _, _ = pair
    assert (await a.get(ADMIN)).status == 401
    user = {"Authorization": "Bearer " + oidc_issuer.mint("bob", roles=["developer"])}
    assert (await a.get(ADMIN, headers=user)).status == 403
    other = {"Authorization": "Bearer " + oidc_issuer.mint("root", roles=["admin"])}
    assert (await a.get(ADMIN, headers=other)).status == 200
    # No write goes through without an admin role, and none changes anything.
    open_up = {"yaml": POLICY.replace("default_policy: deny", "default_policy: allow")}
    for path, body in ((ADMIN + "/versions", open_up), (ADMIN + "/validate", open_up),
                       (ADMIN + "/versions/1/activate", None), (ADMIN + "/rollback", None)):
        for headers, status in (({}, 401), (user, 403)):
            assert (await a.post(path, json=body, headers=headers)).status == status, path
    versions = (await (await a.get(ADMIN + "/versions", headers=other)).json())["versions"]
    assert [v["version"] for v in versions] == [1] and await _version(a) == "v1"


async def test_two_authorization_headers_are_refused(pair, oidc_issuer):  # noqa: F811
    """An admin token and a user token in one request: neither is used; 400, nothing changes."""
    from multidict import CIMultiDict

    a, _, auth = pair
    user = "Bearer " + oidc_issuer.mint("bob", roles=["developer"])
    for order in ((auth["Authorization"], user), (user, auth["Authorization"])):
        headers = CIMultiDict([("Authorization", order[0]), ("Authorization", order[1])])
        assert (await a.get(ADMIN, headers=headers)).status == 400
        assert (await a.post(ADMIN + "/rollback", headers=headers)).status == 400


async def test_activating_a_stored_version_that_no_longer_validates_is_422(pair):
    from shared.keys import DB_POOL

    a, _, auth = pair
    pool = a.app[DB_POOL]
    # As if stored by an older release whose validator accepted `user: []`.
    stale = "roles: {a: {}}\nrules:\n  - {name: r, action: deny, condition: {user: []}}\n"
    await pool.execute("INSERT INTO policy_versions (yaml, sha256, author, comment) VALUES ($1, 'x', 'old', '')", stale)
    resp = await a.post(ADMIN + "/versions/2/activate", headers=auth)
    assert resp.status == 422
    assert [e["path"] for e in (await resp.json())["error"]["errors"]] == ["rules[0].condition.user"]
    assert await pool.fetchval("SELECT version FROM policy_versions WHERE status = 'active'") == 1
    assert await _version(a) == "v1"


async def test_invalid_change_is_422_with_every_error_and_changes_nothing(pair):
    a, _, auth = pair
    bad = POLICY + "rules:\n  - {name: x, action: deny, condition: {tool: x}}\nextra: 1\n"
    resp = await a.post(ADMIN + "/versions", json={"yaml": bad, "comment": "bad"}, headers=auth)
    assert resp.status == 422
    errors = (await resp.json())["error"]["errors"]
    assert {e["path"] for e in errors} >= {"extra", "rules"} or len(errors) >= 2
    assert all(e["line"] for e in errors)
    resp = await a.post(ADMIN + "/versions", data=b"{", headers={**auth, "Content-Type": "application/json"})
    assert resp.status == 400
    versions = (await (await a.get(ADMIN + "/versions", headers=auth)).json())["versions"]
    assert [v["version"] for v in versions] == [1]
    assert await _version(a) == "v1"


async def test_change_reaches_other_replica_then_rollback(pair, pg_dsn, oidc_issuer):  # noqa: F811
    a, b, auth = pair
    allow_all = POLICY.replace("default_policy: deny", "default_policy: allow")
    resp = await a.post(ADMIN + "/validate", json={"yaml": allow_all}, headers=auth)
    assert resp.status == 200
    resp = await a.post(ADMIN + "/versions", json={"yaml": allow_all, "comment": "open up"}, headers=auth)
    assert resp.status == 201 and (await resp.json())["policy_version"] == "v2"
    assert await _version(a) == "v2"  # the replica that took the change, at once

    async def b_has(version):
        return await _version(b) == version

    async def a_has(version):
        return await _version(a) == version

    await eventually(lambda: b_has("v2"), within=5.0)  # the other one (target 1 s; bound generous for loaded CI)
    assert (await (await b.post(authzen.EVALUATION_PATH, json=tool_eval("x", "s", "t"))).json())["decision"] is True
    # A rollback is four eyes: alice's ask waits (202) and she cannot confirm it herself (403); a
    # second admin's same rollback, on either replica, publishes v1's content as v3.
    resp = await a.post(ADMIN + "/rollback", headers=auth)
    assert resp.status == 202 and (await resp.json())["restores"] == "v1" and await _version(a) == "v2"
    resp = await b.post(ADMIN + "/rollback", headers=auth)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "own_change"
    second = {"Authorization": "Bearer " + oidc_issuer.mint("carol", roles=["policy-admin"])}
    resp = await b.post(ADMIN + "/rollback", headers=second)
    assert resp.status == 200 and (await resp.json())["policy_version"] == "v3"
    await eventually(lambda: a_has("v3"), within=5.0)
    assert (await a.post(ADMIN + "/rollback", json={"version": 99}, headers=auth)).status == 404
    assert (await a.post(ADMIN + "/rollback", json={"version": "1"}, headers=auth)).status == 400
    resp = await b.post(ADMIN + "/versions/2/activate", headers=auth)
    assert resp.status == 200
    await eventually(lambda: a_has("v2"), within=5.0)  # activated on b, heard by a
    assert (await a.get(ADMIN + "/versions/9", headers=auth)).status == 404
    body = await (await a.get(ADMIN + "?format=yaml", headers=auth)).text()
    assert "default_policy: allow" in body

    pool = a.app[__import__("shared.keys", fromlist=["DB_POOL"]).DB_POOL]

    async def changes():
        rows = await pool.fetch("SELECT * FROM audit_events WHERE event_type = 'policy_change' AND action <> 'import' ORDER BY ts")
        return rows if len(rows) >= 4 else None

    rows = await changes() or await eventually(changes)
    assert [r["action"] for r in rows[:4]] == ["create", "rollback_request", "rollback", "activate"]
    assert rows[0]["subject"] == "alice"
    assert "+default_policy: allow" in __import__("json").loads(rows[0]["extra"])["diff"]


async def test_confirming_a_rollback_rechecks_the_stored_draft_and_the_ask_is_audited(pair, oidc_issuer):  # noqa: F811
    """The second admin's call publishes only what this PDP still loads (as the console's Approve)."""
    import json

    from shared.keys import DB_POOL

    a, _, auth = pair
    pool = a.app[DB_POOL]
    allow_all = POLICY.replace("default_policy: deny", "default_policy: allow")
    assert (await a.post(ADMIN + "/versions", json={"yaml": allow_all, "comment": "open"}, headers=auth)).status == 201
    resp = await a.post(ADMIN + "/rollback", json={"reason": "incident 7"}, headers=auth)
    assert resp.status == 202
    draft = (await resp.json())["draft"]

    async def asked():
        return await pool.fetchrow("SELECT * FROM audit_events WHERE action = 'rollback_request'")

    row = await eventually(asked)
    assert row["subject"] == "alice" and row["event_type"] == "policy_change"
    assert json.loads(row["extra"]) == {"to_version": "v1", "draft": draft, "comment": "incident 7"}

    # As if this PDP's validation had tightened since the ask (a release that refuses `user: []`).
    stale = "roles: {a: {}}\nrules:\n  - {name: r, action: deny, condition: {user: []}}\n"
    await pool.execute("UPDATE console_drafts SET yaml = $1 WHERE id = $2", stale, draft)
    second = {"Authorization": "Bearer " + oidc_issuer.mint("carol", roles=["policy-admin"])}
    resp = await a.post(ADMIN + "/rollback", headers=second)
    assert resp.status == 409
    assert (await resp.json())["error"] == {"code": "invalid_stored", "message": "the submitted draft no longer validates",
                                            "draft": draft}
    assert await pool.fetchval("SELECT max(version) FROM policy_versions") == 2 and await _version(a) == "v2"
    assert await pool.fetchval("SELECT status FROM console_drafts WHERE id = $1", draft) == "submitted"
