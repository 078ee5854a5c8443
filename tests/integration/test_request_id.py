"""Request ids are ours: minted by each service; a caller's X-Request-ID (the gateway's, for the
PDP) is kept apart as `caller_request_id`, so the gateway's id still leads into the PDP's rows."""

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
from shared.logging import (
    REQUEST_ID_HEADER,
    caller_request_id_var,
    request_id_middleware,
    request_id_var,
)
from tests.integration.pdp_helpers import eventually, pdp_settings, tool_eval


async def test_pdp_audits_under_its_own_request_id_with_the_gateways_apart(tmp_path, aiohttp_server):
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
    assert [(r["service"], r["extra"]["caller_request_id"]) for r in rows] == [("pdp", "gw-req-0042")]
    assert len(rows[0]["request_id"]) == 32 and rows[0]["request_id"] != "gw-req-0042"


async def test_middleware_mints_every_id_and_keeps_a_good_callers_id_apart(aiohttp_client):
    seen: list[str | None] = []
    callers: list[str | None] = []

    async def handler(_request: web.Request) -> web.Response:
        seen.append(request_id_var.get())
        callers.append(caller_request_id_var.get())
        logging.getLogger("t").info("inside")
        return web.Response(text="ok")

    app = web.Application(middlewares=[request_id_middleware()])
    app.router.add_get("/", handler)
    client = await aiohttp_client(app)
    good = await client.get("/", headers={REQUEST_ID_HEADER: "abc-123"})
    bad = await client.get("/", headers={REQUEST_ID_HEADER: "x\u2028" + "y" * 100})
    none = await client.get("/")
    # A caller cannot choose our id (its rows would share another request's); a well-formed id it
    # sent is kept as the caller's, a malformed or oversized one is dropped.
    assert len(seen[0]) == 32 and good.headers[REQUEST_ID_HEADER] == seen[0] != "abc-123"
    assert callers == ["abc-123", None, None]
    assert len(seen[1]) == 32 and seen[1] == bad.headers[REQUEST_ID_HEADER]
    assert len(seen[2]) == 32 and len(set(seen)) == 3
    assert request_id_var.get() is None and caller_request_id_var.get() is None and none.status == 200


async def test_pdp_keeps_a_stated_request_id_apart_and_only_when_well_formed(tmp_path, aiohttp_client):
    """A PEP's evaluation context may name its request id: kept as the caller's, bounded and
    sanitised; a forged, oversized or multi-line one is dropped, never stored as ours."""
    audit = tmp_path / "pdp-audit.jsonl"
    settings = pdp_settings(tmp_path, None, policy_source="file", audit_postgres=False, audit_file=audit)
    client = await aiohttp_client(create_app(settings))
    for stated in ("pep-7", "x" * 65, "a\nb", 42):
        resp = await client.post("/access/v1/evaluation", json=tool_eval("nobody@example.com", "db", "drop",
                                                                         request_id=stated))
        assert resp.status == 200

    async def audited():
        return audit.exists() and len(audit.read_text().splitlines()) == 4 and audit.read_text()

    rows = [json.loads(line) for line in (await eventually(audited)).splitlines()]
    assert [r["extra"].get("caller_request_id") for r in rows] == ["pep-7", None, None, "42"]
    assert all(len(r["request_id"]) == 32 for r in rows) and len({r["request_id"] for r in rows}) == 4
