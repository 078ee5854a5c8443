"""AuthZEN "Todo" interop: the working group's decision vectors against a running PDP over HTTP.

The PDP serves examples/authzen-todo (a native Casbin model and policy) in file mode; the vectors in
examples/authzen-todo/decisions-1.0-implementers-draft.json are the OpenID AuthZEN WG's (source in
that folder's README). Each vector goes through /access/v1/evaluation, and every user's vectors go
through /access/v1/evaluations once per evaluations_semantic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.app import create_app
from shared import authzen
from tests.integration.pdp_helpers import pdp_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "authzen-todo"
VECTORS = json.loads((EXAMPLE / "decisions-1.0-implementers-draft.json").read_text())["evaluation"]
RICK = "CiRmZDA2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
BETH = "CiRmZDM2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False,
                            casbin_model_file=EXAMPLE / "model.conf", casbin_policy_file=EXAMPLE / "policy.csv")
    return await aiohttp_client(create_app(settings))


def _by_subject() -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for v in VECTORS:
        groups.setdefault(v["request"]["subject"]["id"], []).append(v)
    return groups


async def test_every_decision_vector_through_evaluation(client):
    assert len(VECTORS) == 40
    failed = []
    for i, vector in enumerate(VECTORS):
        resp = await client.post(authzen.EVALUATION_PATH, json=vector["request"])
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body["decision"] is not vector["expected"]:
            failed.append((i, vector, body))
    assert failed == []


@pytest.mark.parametrize("semantic", authzen.SEMANTICS)
async def test_every_decision_vector_through_the_batch_endpoint(client, semantic):
    for subject_id, vectors in _by_subject().items():
        for order in (vectors, vectors[::-1]):  # reversed too, so each semantic meets both outcomes first
            items = [{"action": v["request"]["action"], "resource": v["request"]["resource"]} for v in order]
            body = {"subject": {"type": "user", "id": subject_id}, "evaluations": items,
                    "options": {"evaluations_semantic": semantic}}
            resp = await client.post(authzen.EVALUATIONS_PATH, json=body)
            assert resp.status == 200, await resp.text()
            got = [e["decision"] for e in (await resp.json())["evaluations"]]
            expected = [v["expected"] for v in order]
            stop = {"deny_on_first_deny": False, "permit_on_first_permit": True}.get(semantic)
            if stop is not None and stop in expected:
                expected = expected[: expected.index(stop) + 1]
            assert got == expected, (subject_id, semantic)


async def test_answers_name_the_deciding_casbin_line(client):
    resp = await client.post(authzen.EVALUATION_PATH, json=VECTORS[5]["request"])  # Rick updates Morty's todo
    statement = (await resp.json())["context"]["statement"]
    assert statement == {"kind": "casbin", "effect": "allow", "policy_line": 8, "ptype": "p",
                         "rule": ["evil_genius", "todo", "can_update_todo", "any"]}
    meta = await (await client.get(authzen.CONFIGURATION_PATH)).json()
    assert meta["search_subject_endpoint"].endswith("/access/v1/search/subject")


async def test_search_by_enumerating_the_policy(client):
    body = {"subject": {"type": "user"}, "action": {"name": "can_create_todo"}, "resource": {"type": "todo", "id": "todo-1"}}
    found = (await (await client.post("/access/v1/search/subject", json=body)).json())["results"]
    assert {r["id"] for r in found} == {RICK, "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs",
                                        "CiRmZDI2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"}
    body = {"subject": {"type": "user", "id": BETH}, "resource": {"type": "todo", "id": "todo-1"}}
    found = (await (await client.post("/access/v1/search/action", json=body)).json())["results"]
    assert found == [{"name": "can_read_todos"}]
    body = {"subject": {"type": "user", "id": BETH}, "action": {"name": "can_read_user"}, "resource": {"type": "user"},
            "context": {"candidates": ["rick@the-citadel.com", "beth@the-smiths.com"]}}
    found = (await (await client.post(authzen.SEARCH_RESOURCE_PATH, json=body)).json())["results"]
    assert found == [{"type": "user", "id": "rick@the-citadel.com"}, {"type": "user", "id": "beth@the-smiths.com"}]


async def test_bad_native_requests_are_400_and_matcher_errors_deny(client):
    resp = await client.post(authzen.EVALUATION_PATH, json={"subject": {"type": "user"}, "action": {"name": "x"},
                                                            "resource": {"type": "todo", "id": "t"}})
    assert resp.status == 400 and "subject.id" in (await resp.json())["error"]["message"]
    # can_update_todo for an editor reads resource.properties.ownerID: without it the matcher
    # raises inside Casbin, and the answer is a deny, not an error or an allow.
    morty = "CiRmZDE2MTRkMy1jMzlhLTQ3ODEtYjdiZC04Yjk2ZjVhNTEwMGQSBWxvY2Fs"
    resp = await client.post(authzen.EVALUATION_PATH, json={
        "subject": {"type": "user", "id": morty}, "action": {"name": "can_update_todo"},
        "resource": {"type": "todo", "id": "t"}})
    body = await resp.json()
    assert resp.status == 200 and body["decision"] is False and "ownerID" in body["context"]["statement"]["error"]
