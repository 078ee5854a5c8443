"""Two real PDP OS processes sharing one Postgres: a change pushed to one is served by the other."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from tests.fixtures.oidc import oidc_issuer  # noqa: F401
from tests.integration.pdp_helpers import POLICY
from tests.integration.pdp_process import pdp_process

pytestmark = pytest.mark.slow
VERSIONS = "/admin/v1/policy/versions"


async def test_push_to_one_process_is_served_by_the_other_within_a_second(pg_dsn, tmp_path, oidc_issuer):  # noqa: F811
    (tmp_path / "policy.yaml").write_text(POLICY)
    env = {"MCPGW_PDP_POLICY_FILE": str(tmp_path / "policy.yaml"), "MCPGW_PDP_ADMIN_ISSUER": oidc_issuer.issuer,
           "MCPGW_PDP_ADMIN_AUDIENCE": oidc_issuer.audience}
    auth = {"Authorization": "Bearer " + oidc_issuer.mint("alice", roles=["policy-admin"])}
    async with pdp_process(tmp_path, pg_dsn, "a", **env) as a, pdp_process(tmp_path, pg_dsn, "b", **env) as b, \
            aiohttp.ClientSession() as http:
        assert a.proc.pid != b.proc.pid
        assert await a.version(http) == await b.version(http) == ("v1", False)

        # An invalid push is refused whole: nothing stored, neither process changes.
        bad = POLICY.replace("default_policy: deny", "default_policy: maybe")
        async with http.post(a.url + VERSIONS, json={"yaml": bad, "comment": "bad"}, headers=auth) as resp:
            assert resp.status == 422
            errors = (await resp.json())["error"]["errors"]
            assert errors[0]["path"] == "default_policy" and errors[0]["line"]
        await asyncio.sleep(0.3)  # time a stray NOTIFY would have needed to reach b
        assert await a.version(http) == await b.version(http) == ("v1", False)
        async with http.get(b.url + VERSIONS, headers=auth) as resp:
            assert [v["version"] for v in (await resp.json())["versions"]] == [1]

        # A valid push through a: b serves it (new version and new decision) within a second.
        allow_all = POLICY.replace("default_policy: deny", "default_policy: allow")
        async with http.post(a.url + VERSIONS, json={"yaml": allow_all, "comment": "open"}, headers=auth) as resp:
            assert resp.status == 201, await resp.text()
        pushed = asyncio.get_running_loop().time()
        while await b.version(http) != ("v2", True):
            assert asyncio.get_running_loop().time() - pushed < 5.0, "process b did not reload within 5 s"
            await asyncio.sleep(0.01)

        # And the other way round: a rollback on b reaches a.
        async with http.post(b.url + "/admin/v1/policy/rollback", headers=auth) as resp:
            assert resp.status == 202  # four eyes: a second admin confirms
        second = {"Authorization": "Bearer " + oidc_issuer.mint("carol", roles=["policy-admin"])}
        async with http.post(b.url + "/admin/v1/policy/rollback", headers=second) as resp:
            assert resp.status == 200
        rolled = asyncio.get_running_loop().time()
        while await a.version(http) != ("v3", False):
            assert asyncio.get_running_loop().time() - rolled < 5.0, "process a did not reload within 5 s"
            await asyncio.sleep(0.01)
