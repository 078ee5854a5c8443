"""The request id follows a request from the gateway's PEP into the PDP's logs and audit rows."""

from __future__ import annotations

import json
import logging

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from gateway.pep import PolicyClient
from pdp.app import create_app
from shared.auth import Principal
from shared.authzen import tool_resource
from shared.logging import REQUEST_ID_HEADER, request_id_middleware, request_id_var
from tests.integration.pdp_helpers import eventually, pdp_settings


async def test_pdp_audits_under_the_gateways_request_id(tmp_path, aiohttp_server):
    audit = tmp_path / "pdp-audit.jsonl"
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False, audit_file=audit)
    server = await aiohttp_server(create_app(settings))
    async with aiohttp.ClientSession() as session:
        pep = PolicyClient(session, str(server.make_url("")), registry=CollectorRegistry(), cache_ttl=0)
        token = request_id_var.set("gw-req-0042")
        try:
            decision = await pep.check(Principal("nobody@example.com"), "invoke_tool", tool_resource("db", "drop"))
        finally:
            request_id_var.reset(token)
    assert not decision.allowed

    async def audited():
        return audit.exists() and audit.read_text().strip()

    rows = [json.loads(line) for line in (await eventually(audited)).splitlines()]
    assert [(r["service"], r["request_id"]) for r in rows] == [("pdp", "gw-req-0042")]


async def test_middleware_reuses_a_good_id_and_replaces_a_bad_one(aiohttp_client):
    seen: list[str | None] = []

    async def handler(_request: web.Request) -> web.Response:
        seen.append(request_id_var.get())
        logging.getLogger("t").info("inside")
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_id_middleware()])
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    good = await client.get("/", headers={REQUEST_ID_HEADER: "abc-123"})
    bad = await client.get("/", headers={REQUEST_ID_HEADER: "x\u2028" + "y" * 100})
    none = await client.get("/")
    assert good.headers[REQUEST_ID_HEADER] == seen[0] == "abc-123"
    assert len(seen[1]) == 32 and seen[1] == bad.headers[REQUEST_ID_HEADER]
    assert len(seen[2]) == 32 and seen[2] != seen[1]
    assert request_id_var.get() is None and none.status == 200
