"""AuthZEN "Search" interop: subject, resource and action search against a running PDP over HTTP.

The PDP serves examples/authzen-search (native Casbin model + policy) in file mode; the expected
results are the working group's response tables (examples/authzen-search/expected.json). Results
are compared unordered, as the WG's test harness does. Candidates come from enumerating the policy:
no request carries `context.candidates`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pdp.app import create_app
from tests.integration.pdp_helpers import pdp_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "authzen-search"
EXPECTED = json.loads((EXAMPLE / "expected.json").read_text())
USERS = ["alice", "bob", "carol", "dan", "erin", "felix"]
RECORDS = [str(i) for i in range(101, 121)]


@pytest.fixture
async def client(tmp_path, aiohttp_client):
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False,
                            casbin_model_file=EXAMPLE / "model.conf", casbin_policy_file=EXAMPLE / "policy.csv")
    return await aiohttp_client(create_app(settings))


async def _search(client, kind: str, body: dict) -> list[dict]:
    resp = await client.post(f"/access/v1/search/{kind}", json=body)
    assert resp.status == 200, await resp.text()
    return (await resp.json())["results"]


async def test_subject_search(client):
    assert len(EXPECTED["subject"]) == 60
    for case in EXPECTED["subject"]:
        body = {"subject": {"type": "user"}, "action": {"name": case["action"]},
                "resource": {"type": "record", "id": case["resource_id"]}}
        found = await _search(client, "subject", body)
        assert sorted(r["id"] for r in found) == sorted(case["subjects"]), case
        assert {r["type"] for r in found} == {"user"}
    assert await _search(client, "subject", {"subject": {"type": "user"}, "action": {"name": "view"},
                                              "resource": {"type": "record", "id": "999"}}) == []


async def test_resource_search(client):
    assert len(EXPECTED["resource"]) == 18
    for case in EXPECTED["resource"]:
        body = {"subject": {"type": "user", "id": case["subject_id"]}, "action": {"name": case["action"]},
                "resource": {"type": "record"}}
        found = await _search(client, "resource", body)
        assert sorted(r["id"] for r in found) == sorted(case["resources"]), case
    assert await _search(client, "resource", {"subject": {"type": "user", "id": "zed"}, "action": {"name": "view"},
                                               "resource": {"type": "record"}}) == []


async def test_action_search_every_user_and_record(client):
    expected = {(c["subject_id"], c["resource_id"]): c["actions"] for c in EXPECTED["action"]}
    assert len(expected) == 74
    for user in USERS:
        for record in RECORDS:
            body = {"subject": {"type": "user", "id": user}, "resource": {"type": "record", "id": int(record)}}
            found = await _search(client, "action", body)
            assert sorted(r["name"] for r in found) == sorted(expected.get((user, record), [])), (user, record)
