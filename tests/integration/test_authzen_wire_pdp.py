"""The wire contract against a real PDP: whatever the PEP's builders produce, the PDP answers in a
shape the PEP's strict parsers accept; what the PEP never builds, the PDP refuses with a 400."""

from __future__ import annotations

from typing import Any

import pytest

from pdp.app import create_app
from shared import authzen
from tests.integration.pdp_helpers import pdp_settings
from tests.shared.test_authzen import CHECKS, SUBJECT


@pytest.fixture
async def client(pg_dsn, tmp_path, aiohttp_client):
    return await aiohttp_client(create_app(pdp_settings(tmp_path, pg_dsn)))


async def _post(client: Any, path: str, body: Any) -> tuple[int, Any]:
    resp = await client.post(path, json=body)
    return resp.status, await resp.json()


async def test_every_built_message_gets_an_answer_the_pep_accepts(client) -> None:
    for action, resource in CHECKS:
        status, body = await _post(client, authzen.EVALUATION_PATH,
                                   authzen.evaluation_request(SUBJECT, action, resource, {"a": 1}))
        assert status == 200, (action, resource, body)
        assert authzen.parse_decision(body).policy_version == "v1"
    checks = [(a, r, None) for a, r in CHECKS]
    status, body = await _post(client, authzen.EVALUATIONS_PATH, authzen.evaluations_request(SUBJECT, checks))
    assert status == 200 and len(authzen.parse_evaluations(body, len(checks))) == len(checks)
    tools = [authzen.tool_resource("s1", "a"), authzen.tool_resource("s1", "b")]
    status, body = await _post(client, authzen.SEARCH_RESOURCE_PATH, authzen.search_request(SUBJECT, "invoke_tool", tools))
    ids, version = authzen.parse_search(body, "mcp_tool")
    assert status == 200 and ids <= {r.id for r in tools} and version == "v1"


GOOD = authzen.evaluation_request(SUBJECT, "invoke_tool", authzen.tool_resource("s", "t"))


@pytest.mark.parametrize("path,body,fragment", [
    (authzen.EVALUATIONS_PATH, {"subject": SUBJECT, "evaluations": [GOOD],
                                "options": {"evaluations_semantic": "first_wins"}}, "evaluations_semantic"),
    (authzen.EVALUATIONS_PATH, {"evaluations": [{**GOOD, "action": {"name": "drop"}}]}, "evaluations[0].action.name"),
    (authzen.SEARCH_RESOURCE_PATH, {**authzen.search_request(SUBJECT, "invoke_tool", []),
                                    "resource": {"type": "mcp_prompt"}}, "search supports"),
    (authzen.SEARCH_RESOURCE_PATH, {**authzen.search_request(SUBJECT, "invoke_tool", []),
                                    "context": {"candidates": [1]}}, "context.candidates"),
])
async def test_pdp_refuses_what_the_pep_never_builds(client, path: str, body: Any, fragment: str) -> None:
    status, answer = await _post(client, path, body)
    assert status == 400 and fragment in answer["error"]["message"]
