"""Sentences of docs/policy.md not covered elsewhere: names, fail-closed 503, caller checks, admin
availability, audit contents, and a LISTEN connection that is lost and comes back."""

from __future__ import annotations

import json
import socket

import aiohttp
import pytest
from aiohttp import web

from pdp.app import create_app
from pdp.keys import STATE
from shared import authzen
from shared.keys import DB_POOL
from shared.settings import Secret
from tests.fixtures.oidc import oidc_issuer  # noqa: F401
from tests.integration.pdp_helpers import POLICY, eventually, pdp_settings, tool_eval


def file_settings(tmp_path, **changes):
    return pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False, **changes)


@pytest.mark.parametrize(("resource", "fragment"), [
    ({"type": "mcp_tool", "properties": {"mcp_server": "a:b", "tool": "t"}}, "server name 'a:b' must not contain ':'"),
    ({"type": "mcp_tool", "properties": {"mcp_server": "s", "tool": "x:y"}}, "must not contain ':'"),
    ({"type": "mcp_tool", "id": "s:resource/file"}, "must not start with 'resource/', 'prompt/' or 'method/'"),
    ({"type": "mcp_tool", "id": "s:prompt/p"}, "must not start with 'resource/', 'prompt/' or 'method/'"),
    ({"type": "mcp_server", "id": "a:b"}, "must not contain ':'"),
])
async def test_names_that_could_be_confused_are_400(tmp_path, aiohttp_client, resource, fragment):
    client = await aiohttp_client(create_app(file_settings(tmp_path)))
    action = "invoke_tool" if resource["type"] == "mcp_tool" else "list_tools"
    body = {**tool_eval("admin@example.com", "s", "t"), "action": {"name": action}, "resource": resource}
    resp = await client.post(authzen.EVALUATION_PATH, json=body)
    assert resp.status == 400 and fragment in (await resp.json())["error"]["message"]


async def test_no_policy_loaded_fails_closed_with_503(tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(file_settings(tmp_path)))
    client.app[STATE].current = None  # as if no version could ever be loaded
    search = {"subject": {"type": "user", "id": "a"}, "action": {"name": "invoke_tool"},
              "resource": {"type": "mcp_tool"}, "context": {"candidates": ["s:t"]}}
    for path, body in ((authzen.EVALUATION_PATH, tool_eval("a", "s", "t")),
                       (authzen.EVALUATIONS_PATH, {"evaluations": [tool_eval("a", "s", "t")]}),
                       (authzen.SEARCH_RESOURCE_PATH, search)):
        resp = await client.post(path, json=body)
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "no_policy"
    assert (await client.get("/readyz")).status == 503


async def test_batch_and_search_limits(tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(file_settings(tmp_path, max_batch=3)))
    items = [tool_eval("a", "s", f"t{i}") for i in range(4)]
    resp = await client.post(authzen.EVALUATIONS_PATH, json={"evaluations": items})
    assert resp.status == 400 and "at most 3" in (await resp.json())["error"]["message"]
    assert (await client.post(authzen.EVALUATIONS_PATH, json={"evaluations": items[:3]})).status == 200
    search = {"subject": {"type": "user", "id": "a"}, "action": {"name": "invoke_tool"},
              "resource": {"type": "mcp_tool"}, "context": {"candidates": [f"s:t{i}" for i in range(4)]}}
    resp = await client.post(authzen.SEARCH_RESOURCE_PATH, json=search)
    assert resp.status == 400 and "at most 3" in (await resp.json())["error"]["message"]


async def test_standalone_mode_requires_the_api_token(tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(file_settings(tmp_path, access_mode="standalone",
                                                           api_token=Secret("s3cret-token"))))
    body = tool_eval("dev@example.com", "dev-server", "x")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-token"}):
        resp = await client.post(authzen.EVALUATION_PATH, json=body, headers=headers)
        assert resp.status == 401 and "s3cret" not in await resp.text()
    resp = await client.post(authzen.EVALUATION_PATH, json=body, headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status == 200 and (await resp.json())["decision"] is True
    assert (await client.get("/healthz")).status == 200  # only /access/* is guarded
    # The right token plus another: neither wins (a proxy and the PDP could disagree on which).
    from multidict import CIMultiDict

    for pair in (("Bearer s3cret-token", "Bearer wrong"), ("Bearer wrong", "Bearer s3cret-token")):
        two = CIMultiDict([("Authorization", pair[0]), ("Authorization", pair[1])])
        resp = await client.post(authzen.EVALUATION_PATH, json=body, headers=two)
        assert resp.status == 400 and "s3cret" not in await resp.text()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
            address = s.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_sidecar_mode_refuses_non_loopback_callers(tmp_path):
    address = _non_loopback_address()
    if address is None:
        pytest.skip("this machine has no non-loopback IPv4 address")
    runner = web.AppRunner(create_app(file_settings(tmp_path)), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address, 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            # Forwarding headers are the caller's own words: they must not make it loopback.
            spoofed = {"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
            for headers in ({}, spoofed):
                async with http.post(f"http://{address}:{port}{authzen.EVALUATION_PATH}", headers=headers,
                                     json=tool_eval("dev@example.com", "dev-server", "x")) as resp:
                    assert resp.status == 403 and "loopback" in (await resp.json())["error"]["message"]
            async with http.get(f"http://{address}:{port}/healthz") as resp:
                assert resp.status == 200
    finally:
        await runner.cleanup()


async def test_admin_disabled_is_404_and_file_mode_writes_are_409(tmp_path, aiohttp_client, oidc_issuer):  # noqa: F811
    plain = await aiohttp_client(create_app(file_settings(tmp_path)))
    resp = await plain.get("/admin/v1/policy")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "admin_disabled"
    client = await aiohttp_client(create_app(file_settings(
        tmp_path, admin_issuer=oidc_issuer.issuer, admin_audience=oidc_issuer.audience)))
    auth = {"Authorization": "Bearer " + oidc_issuer.mint("alice", roles=["policy-admin"])}
    for path in ("/admin/v1/policy/versions", "/admin/v1/policy/versions/1/activate", "/admin/v1/policy/rollback"):
        resp = await client.post(path, json={"yaml": POLICY}, headers=auth)
        assert resp.status == 409 and (await resp.json())["error"]["code"] == "file_mode", path
    assert (await client.get("/admin/v1/policy", headers=auth)).status == 200  # reads still work


async def test_audit_rows_carry_no_arguments_and_one_row_per_search(pg_dsn, tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(pdp_settings(tmp_path, pg_dsn)))
    body = tool_eval("nobody", "s", "t", arguments={"password": "hunter2-marker", "path": "/etc/x"})
    decision_id = (await (await client.post(authzen.EVALUATION_PATH, json=body)).json())["context"]["decision_id"]
    search = {"subject": {"type": "user", "id": "dev@example.com"}, "action": {"name": "invoke_tool"},
              "resource": {"type": "mcp_tool"},
              "context": {"candidates": [f"dev-server:t{i}" for i in range(40)] + ["prod-server:x"]}}
    assert (await client.post(authzen.SEARCH_RESOURCE_PATH, json=search)).status == 200
    pool = client.app[DB_POOL]

    async def rows():
        found = await pool.fetch("SELECT * FROM audit_events WHERE service = 'pdp' AND event_type <> 'policy_change' ORDER BY ts")
        return found if len(found) >= 2 else None

    found = await eventually(rows)
    await eventually(lambda: _settled(pool, len(found)))
    decision, searched = found
    assert decision["decision_id"] == decision_id and decision["parameters"] is None
    assert "hunter2-marker" not in json.dumps({k: str(v) for k, v in decision.items()})
    assert searched["action"] == "search:invoke_tool" and searched["reason"] == "40 of 41 candidates allowed"
    assert json.loads(searched["extra"]) == {"candidates": 41, "allowed": 40}


async def _settled(pool, count: int) -> bool:
    return await pool.fetchval("SELECT count(*) FROM audit_events WHERE service = 'pdp' AND event_type <> 'policy_change'") == count


async def test_lost_listen_connection_reconnects_and_reloads(pg_dsn, tmp_path, aiohttp_client, oidc_issuer):  # noqa: F811
    def settings():
        return pdp_settings(tmp_path, pg_dsn, admin_issuer=oidc_issuer.issuer, admin_audience=oidc_issuer.audience)

    a = await aiohttp_client(create_app(settings()))
    b = await aiohttp_client(create_app(settings()))
    pool = a.app[DB_POOL]
    listeners = "FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%'"

    async def both_listening():
        return await pool.fetchval(f"SELECT count(*) {listeners}") == 2

    await eventually(both_listening)
    # Kill both replicas' LISTEN connections from the server side, as a failover would.
    assert await pool.fetchval(f"SELECT count(pg_terminate_backend(pid)) {listeners}") == 2
    auth = {"Authorization": "Bearer " + oidc_issuer.mint("alice", roles=["policy-admin"])}
    allow_all = POLICY.replace("default_policy: deny", "default_policy: allow")
    resp = await a.post("/admin/v1/policy/versions", json={"yaml": allow_all, "comment": "during outage"}, headers=auth)
    assert resp.status == 201

    async def b_serves_v2():
        answer = await (await b.post(authzen.EVALUATION_PATH, json=tool_eval("x", "s", "t"))).json()
        return answer["context"]["policy_version"] == "v2" and answer["decision"] is True

    # noticed at once (termination listener), reconnected after the 1 s retry, active row reloaded
    await eventually(b_serves_v2, within=3.0)


async def test_invalid_policy_file_is_not_imported_into_an_empty_database(pg_dsn, tmp_path):
    """Stored first, an invalid import would be the active version and block every later start."""
    import asyncpg

    from pdp.policy import PolicyInvalid

    (tmp_path / "policy.yaml").write_text("roles: {a: {}}\nrules:\n  - {name: r, action: deny, condition: {tool: x}}\n")
    runner = web.AppRunner(create_app(pdp_settings(tmp_path, pg_dsn, audit_postgres=False)), access_log=None)
    with pytest.raises(PolicyInvalid):
        await runner.setup()
    await runner.cleanup()
    conn = await asyncpg.connect(pg_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM policy_versions") == 0
    finally:
        await conn.close()


async def test_readyz_is_503_when_the_database_does_not_answer(pg_dsn, tmp_path, aiohttp_client):
    client = await aiohttp_client(create_app(pdp_settings(tmp_path, pg_dsn, audit_postgres=False)))
    assert (await client.get("/readyz")).status == 200
    await client.app[DB_POOL].close()  # as if the database went away
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body["problems"] == ["database unreachable: InterfaceError"]
    assert body["policy_version"] == "v1"  # decisions still come from the loaded policy


async def test_one_unrepresentable_name_does_not_fail_a_batch_or_search(tmp_path, aiohttp_client):
    """Issue 9 (6): a hostile backend's tool name is that item's deny, never the whole answer's 400."""
    client = await aiohttp_client(create_app(file_settings(tmp_path)))
    subject = {"type": "user", "id": "admin@example.com"}
    good, bad = tool_eval("admin@example.com", "s", "t"), {"resource": {"type": "mcp_tool", "id": "s:evil:tool"}}
    items = [good, bad, {"resource": {"type": "mcp_tool", "id": "s:resource/fetch"}},
             {"resource": {"type": "mcp_tool", "id": "s:method/x"}}, good]
    resp = await client.post(authzen.EVALUATIONS_PATH, json={"subject": subject, "action": {"name": "invoke_tool"},
                                                             "evaluations": items})
    assert resp.status == 200
    answers = (await resp.json())["evaluations"]
    assert [a["decision"] for a in answers] == [True, False, False, False, True]
    assert answers[1]["context"]["error"]["code"] == "bad_resource_name"
    search = {"subject": subject, "action": {"name": "invoke_tool"}, "resource": {"type": "mcp_tool"},
              "context": {"candidates": ["s:echo", "s:evil:tool", "s:resource/fetch", "s:prompt/p", "s:method/m",
                                         "nocolon", "s:ok"]}}
    resp = await client.post(authzen.SEARCH_RESOURCE_PATH, json=search)
    assert resp.status == 200
    assert [r["id"] for r in (await resp.json())["results"]] == ["s:echo", "s:ok"]
    # A malformed contract (not a name problem) is still a 400.
    search["context"]["candidates"] = ["s:echo", 3]
    assert (await client.post(authzen.SEARCH_RESOURCE_PATH, json=search)).status == 400
    # And an unknown method is decided on mcp:{server}:method/{name}, granted by '*' for admin.
    resp = await client.post(authzen.EVALUATION_PATH, json={
        "subject": subject, "action": {"name": "call_method"}, "resource": {"type": "mcp_method", "id": "s:tasks/get"}})
    assert (await resp.json())["decision"] is True
