"""`GET /readyz`: 200 when the gateway can serve, 503 naming the problem; the PDP check is cached."""

from __future__ import annotations

from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.readiness import PdpProbe, audit_state, keys_problem
from shared.auth import AuthConfig, Authenticator
from tests.fixtures.oidc import running_issuer
from tests.integration.gateway_harness import gateway_stack, start_site


async def test_ready_without_a_token_and_not_audited(tmp_path: Path, pg_dsn: str) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {}) as stack:
        status, body, _ = await stack.call("GET", "/readyz", subject=None)
        assert status == 200, body
        assert body == {"status": "ready", "problems": [], "audit_database": "ok"}
        status, body, _ = await stack.call("GET", "/health", subject=None)
        assert status == 200 and body["status"] == "healthy"


async def test_pdp_down_is_503_but_health_stays_200(tmp_path: Path, pg_dsn: str) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {}) as stack:
        await stack.pdp.cleanup()
        status, body, _ = await stack.call("GET", "/readyz", subject=None)
        assert status == 503 and body["status"] == "not_ready"
        assert len(body["problems"]) == 1 and "PDP unreachable" in body["problems"][0]
        status, _, _ = await stack.call("GET", "/health", subject=None)
        assert status == 200  # liveness: restarting the gateway would not bring the PDP back


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_pdp_probe_caches_its_answer_and_reads_statuses() -> None:
    answers = {"status": 200}
    hits = []

    async def readyz(request: web.Request) -> web.Response:
        hits.append(request.headers.get("Authorization"))
        return web.Response(status=answers["status"])

    app = web.Application()
    app.router.add_get("/readyz", readyz)
    runner, url = await start_site(app)
    clock = Clock()
    try:
        async with aiohttp.ClientSession() as session:
            probe = PdpProbe(session, url + "/", ttl=5, clock=clock)
            assert await probe.check() is None
            answers["status"] = 503
            assert await probe.check() is None and len(hits) == 1  # cached within the TTL
            clock.now = 5
            assert await probe.check() == "PDP not ready (HTTP 503)" and len(hits) == 2
            answers["status"] = 404  # a PDP without a readiness endpoint still answered
            clock.now = 10
            assert await probe.check() is None and hits == [None, None, None]
    finally:
        await runner.cleanup()
    async with aiohttp.ClientSession() as session:
        probe = PdpProbe(session, url, clock=clock)  # the site is gone now
        problem = await probe.check()
        assert problem is not None and problem.startswith("PDP unreachable")


async def test_signing_keys_problem_retries_the_idp() -> None:
    async with running_issuer() as issuer, aiohttp.ClientSession() as session:
        issuer.fail_jwks = True
        auth = Authenticator(AuthConfig(audience="mcpgw", issuer=issuer.issuer), session)
        assert await keys_problem(auth) == "identity provider signing keys unavailable"
        issuer.fail_jwks = False
        auth.jwks._retry_interval = 0  # the IdP is back; don't wait out the retry interval
        assert await keys_problem(auth) is None
        assert await keys_problem(None) is None  # auth off


def test_audit_state() -> None:
    class Emitter:
        healthy = False

    assert audit_state(Emitter(), postgres=True) == "spooling"
    assert audit_state(Emitter(), postgres=False) is None
    assert audit_state(None, postgres=True) is None
