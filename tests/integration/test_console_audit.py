"""Console Decisions (keyset pages, filters, export, one decision joined) and Least privilege."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from shared.keys import DB_POOL
from tests.integration.console_harness import running_console
from tests.integration.pdp_helpers import eventually, tool_eval


@pytest.fixture
async def console(tmp_path, pg_dsn):
    async with running_console(tmp_path, pg_dsn, audit_flush_interval=0.02) as c:
        yield c


async def _fill(pool, n: int) -> None:
    base = datetime.now(UTC)
    # Pairs of rows share a timestamp, so the cursor must order by (ts, id), not ts alone.
    await pool.copy_records_to_table("audit_events", columns=[
        "event_id", "ts", "service", "event_type", "subject", "mcp_server", "tool", "decision", "decision_id"],
        records=[(__import__("uuid").uuid4(), base - timedelta(seconds=i // 2), "gateway", "mcp_request",
                  f"u{i % 3}", "alpha", "=HYPERLINK(\"x\")" if i == 0 else "echo", "deny" if i % 5 == 0 else "allow",
                  f"d{i}") for i in range(n)])


async def test_keyset_pages_cover_every_row_once_and_filters_apply(console):
    pool = console.app[DB_POOL]
    await pool.execute("DELETE FROM audit_events")
    await _fill(pool, 130)
    http, _ = await console.signed_in("vera")
    async with http:
        seen: list[str] = []
        url = console.url + "/console/decisions?service=gateway"
        while url:
            html = await (await http.get(url)).text()
            seen += re.findall(r'href="/console/decisions/(d\d+)"', html)
            nxt = re.search(r'href="(/console/decisions\?[^"]*after=[^"]*)" rel="next"', html)
            url = console.url + nxt.group(1).replace("&amp;", "&") if nxt else ""
        assert len(seen) == 130 and len(set(seen)) == 130
        html = await (await http.get(console.url + "/console/decisions?subject=u1&decision=deny")).text()
        ids = {int(i[1:]) for i in re.findall(r'/console/decisions/(d\d+)"', html)}
        assert ids == {i for i in range(130) if i % 3 == 1 and i % 5 == 0}
        resp = await http.get(console.url + "/console/decisions?since=yesterday")
        assert resp.status == 400 and "ISO 8601" in await resp.text()
        resp = await http.get(console.url + "/console/decisions?after=garbage")
        assert resp.status == 400


async def test_export_csv_and_json_with_filters_and_formula_quoting(console):
    pool = console.app[DB_POOL]
    await pool.execute("DELETE FROM audit_events")
    await _fill(pool, 20)
    http, _ = await console.signed_in("vera")
    async with http:
        resp = await http.get(console.url + "/console/decisions/export?format=json&subject=u0")
        body = json.loads(await resp.text())
        assert resp.headers["Content-Disposition"].endswith('decisions.json"')
        assert {r["subject"] for r in body} == {"u0"} and len(body) == 7
        resp = await http.get(console.url + "/console/decisions/export?format=csv&service=gateway")
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
        assert len(rows) == 20 and resp.content_type == "text/csv"
        assert {r["tool"] for r in rows} == {"echo", "'=HYPERLINK(\"x\")"}
        assert (await http.get(console.url + "/console/decisions/export?format=xml")).status == 400


# Every start a spreadsheet may run as a formula: ASCII signs, fullwidth and small forms, the
# OWASP controls (TAB, CR) and LF, and signs after leading spaces (Excel trims them).
FORMULAS = ["=1+1", "+1+1", "-1+1", "@SUM(1)", "\t=HYPERLINK(\"http://evil.example/x\",\"open\")", "\r=1+1",
            "\n=1+1", "\uff1dHYPERLINK(\"http://evil.example\")", "\uff0b1", "\uff0d1", "\uff20SUM(1)", "\ufe661",
            "  =1+1", "\u3000=1+1", "\t\r @x"]


async def test_csv_export_neutralises_every_formula_start(console):
    """A tool name is the caller's text (the gateway audits the name a caller asked for, denied or
    not): in the exported file every cell that could run is text, its value otherwise intact."""
    pool = console.app[DB_POOL]
    await pool.execute("DELETE FROM audit_events")
    for text in [*FORMULAS, "echo", "a=b"]:
        await pool.execute(
            "INSERT INTO audit_events (event_id, ts, service, event_type, subject, mcp_server, tool, decision) "
            "VALUES (gen_random_uuid(), now(), 'gateway', 'tool_call', 'mallory', 'bank', $1, 'deny')", text)
    http, _ = await console.signed_in("vera")
    async with http:
        resp = await http.get(console.url + "/console/decisions/export?format=csv")
        raw = await resp.text()
    rows = list(csv.DictReader(io.StringIO(raw, newline="")))
    tools = sorted(r["tool"] for r in rows if r["subject"] == "mallory")
    assert tools == sorted(["'" + f for f in FORMULAS] + ["echo", "a=b"])
    assert raw.startswith('"id","ts","service"')  # every cell quoted (OWASP's second rule)


async def test_one_decision_joins_gateway_and_pdp_rows_and_shows_the_statement(console):
    http, _ = await console.signed_in("vera")
    async with http:
        async with http.post(console.url + "/access/v1/evaluation", json=tool_eval(
                "dev@example.com", "dev-server", "build", request_id="r-1")) as resp:
            decision_id = (await resp.json())["context"]["decision_id"]
        pool = console.app[DB_POOL]
        await eventually(lambda: pool.fetchval("SELECT 1 FROM audit_events WHERE decision_id = $1", decision_id))
        await pool.execute(
            "INSERT INTO audit_events (event_id, ts, service, event_type, subject, decision, decision_id, http_status) "
            "VALUES (gen_random_uuid(), now(), 'gateway', 'mcp_request', 'dev@example.com', 'allow', $1, 200)",
            decision_id)
        html = await (await http.get(console.url + f"/console/decisions/{decision_id}")).text()
        assert "gateway · mcp_request" in html and "pdp · policy_decision" in html
        assert "Deciding statement" in html and "allow by role &#39;developer&#39;" in html
        assert (await http.get(console.url + "/console/decisions/nope")).status == 404


async def test_least_privilege_lists_unused_grants_and_drafts_their_removal(console):
    async with console.client() as agent:
        for _ in range(2):
            async with agent.post(console.url + "/access/v1/evaluation",
                                  json=tool_eval("admin@example.com", "any", "tool")) as resp:
                assert (await resp.json())["decision"] is True
    pool = console.app[DB_POOL]
    await eventually(lambda: pool.fetchval(
        "SELECT 1 FROM audit_events WHERE subject = 'admin@example.com' AND decision = 'allow'"))
    http, csrf = await console.signed_in("eddie")
    async with http:
        html = await (await http.get(console.url + "/console/least-privilege?days=7")).text()
        unused_perms = html.split("Users holding roles")[0]
        assert "<td>developer</td><td><code>mcp:dev-server:*</code></td><td>invoke_tool</td>" in unused_perms
        assert "<td>admin</td>" not in unused_perms  # admin's permission decided the allows
        assert "<td>dev@example.com</td><td>developer</td>" in html
        assert "<td>admin@example.com</td>" not in html
        resp = await http.post(console.url + "/console/least-privilege", data={"csrf": csrf, "days": "7"})
        assert re.search(r"/console/drafts/\d+$", str(resp.url))
        diff = await (await http.get(str(resp.url) + "/diff")).text()
        assert "user &#39;dev@example.com&#39; no longer bound to role &#39;developer&#39;" in diff
        assert "binding removed" in diff and "permission narrowed" in diff
        assert ">draft<" in await (await http.get(str(resp.url))).text()  # goes through review like any change
