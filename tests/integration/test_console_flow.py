"""Console changes end to end over HTTP: draft → errors by line → submit → review → publish → roll back;
emergency block; XSS payloads render inert; every change is audited."""

from __future__ import annotations

import re

import pytest

from pdp.keys import STATE
from shared.keys import DB_POOL
from tests.integration.console_harness import running_console
from tests.integration.pdp_helpers import POLICY, eventually, tool_eval

FIXED = POLICY.replace("default_policy: deny", """  - name: "analysts may read reports"
    condition:
      role: analyst
      mcp_server: reports
      tool_name: read_report
    action: allow
    priority: 10
default_policy: deny""")
MINE = POLICY.replace("default_policy: deny", """  - name: "max lets himself do anything"
    condition:
      user: max
    action: allow
    priority: 1
default_policy: deny""")
BROKEN = FIXED.replace("action: allow\n    priority: 10", "action: allow\n    priority: 10\n    colour: red")
TESTS = """- name: analyst reads reports
  subject: ann
  roles: [analyst]
  resource: reports:read_report
  action: invoke_tool
  expect: allow
"""


@pytest.fixture
async def console(tmp_path, pg_dsn):
    async with running_console(tmp_path, pg_dsn, audit_flush_interval=0.02) as c:
        yield c


async def _decide(console, http, subject="ann", roles=("analyst",)):
    async with http.post(console.url + "/access/v1/evaluation",
                         json=tool_eval(subject, "reports", "read_report", roles=roles)) as resp:
        body = await resp.json()
    return body["decision"], body["context"]["policy_version"]


async def test_editor_to_approver_publishes_and_rollback_restores(console):
    editor, csrf = await console.signed_in("eddie")
    approver, acsrf = await console.signed_in("anna")
    async with editor, approver:
        assert await _decide(console, editor) == (False, "v1")
        resp = await editor.post(console.url + "/console/drafts", data={"title": "reports", "csrf": csrf})
        draft_url = str(resp.url)
        assert re.search(r"/console/drafts/\d+$", draft_url)
        # An invalid draft may be saved, never submitted; the error shows beside its line.
        form = {"csrf": csrf, "title": "reports", "yaml": BROKEN, "tests": TESTS, "comment": "let analysts read"}
        resp = await editor.post(draft_url, data={**form, "op": "save"})
        assert resp.status == 200 and "Draft saved. It is not valid yet." in await resp.text()
        resp = await editor.post(draft_url, data={**form, "op": "submit"})
        html = await resp.text()
        line = BROKEN.splitlines().index("    colour: red") + 1
        assert resp.status == 422 and "not submitted" in html
        assert re.search(rf"<td>{line}</td><td><code>    colour: red</code></td><td><p class=\"line-error\">[^<]*colour", html)
        # A failing stored policy test blocks submission too.
        failing = TESTS.replace("expect: allow", "expect: deny")
        resp = await editor.post(draft_url, data={**form, "yaml": FIXED, "tests": failing, "op": "submit"})
        assert resp.status == 422 and "1 policy test(s) fail" in await resp.text()
        resp = await editor.post(draft_url, data={**form, "yaml": FIXED, "op": "validate"})
        assert resp.status == 200 and "PASS analyst reads reports" in await resp.text()
        resp = await editor.post(draft_url, data={**form, "yaml": FIXED, "op": "submit"})
        assert resp.status == 200 and ">submitted<" in await resp.text()
        # The diff names the change; what-if shows both decisions.
        draft_id = draft_url.rsplit("/", 1)[1]
        html = await (await editor.get(draft_url + "/diff")).text()
        assert "rule added" in html and "analysts may read reports" in html
        html = await (await editor.get(console.url + f"/console/whatif?draft={draft_id}&subject=ann&roles=analyst"
                                                     "&server=reports&tool=read_report&action=invoke_tool")).text()
        assert re.search(r"Active v1</td><td class=\"deny\">deny", html)
        assert re.search(rf"Draft {draft_id}</td><td class=\"allow\">allow</td><td>allow by rule", html)
        # The editor cannot approve (no role); the approver can.
        resp = await editor.post(draft_url + "/review", data={"csrf": csrf, "op": "approve"}, allow_redirects=False)
        assert resp.status == 403
        # A submitted draft is frozen; a rejection sends it back to the editor with the comment.
        resp = await editor.post(draft_url, data={**form, "yaml": FIXED, "op": "save"}, allow_redirects=False)
        assert resp.status == 409
        resp = await approver.post(draft_url + "/review", data={"csrf": acsrf, "op": "reject",
                                                                "comment": "say why ann needs it"})
        html = await resp.text()
        assert ">rejected<" in html and "say why ann needs it" in html
        resp = await approver.post(draft_url + "/review", data={"csrf": acsrf, "op": "approve"}, allow_redirects=False)
        assert resp.status == 409  # only a submitted draft can be approved
        resp = await editor.post(draft_url, data={**form, "yaml": FIXED, "op": "submit"})
        assert resp.status == 200 and ">submitted<" in await resp.text()
        resp = await approver.post(draft_url + "/review", data={"csrf": acsrf, "op": "approve", "comment": "ok"})
        assert resp.status == 200 and "published as v2" in await resp.text()
        assert await _decide(console, editor) == (True, "v2")
        html = await (await approver.get(console.url + "/console/history")).text()
        assert "anna" in html and "let analysts read" in html
        html = await (await approver.get(console.url + "/console/")).text()
        assert "<dt>Published by</dt><dd>anna (approved review)</dd>" in html
        # The next draft starts with the policy tests that were reviewed with the active version.
        resp = await editor.post(console.url + "/console/drafts", data={"title": "next", "csrf": csrf})
        assert "analyst reads reports" in await resp.text()
        pool = console.app[DB_POOL]

        async def audited():
            rows = await pool.fetch("SELECT action FROM audit_events WHERE event_type IN ('console', 'policy_change')")
            return {r["action"] for r in rows} >= {"draft_create", "draft_save", "draft_submit", "approve",
                                                   "draft_approve", "console_login"}
        await eventually(audited)


async def test_rollback_is_a_draft_of_the_old_version_that_another_approver_must_approve(console):
    """A rollback publishes content (it may widen access again), so it goes through four eyes."""
    editor, csrf = await console.signed_in("eddie")
    anna, acsrf = await console.signed_in("anna")
    max_, mcsrf = await console.signed_in("max")
    async with editor, anna, max_:
        resp = await editor.post(console.url + "/console/drafts", data={"title": "reports", "csrf": csrf})
        url = str(resp.url)
        await editor.post(url, data={"csrf": csrf, "title": "r", "yaml": FIXED, "tests": TESTS, "op": "submit"})
        await anna.post(url + "/review", data={"csrf": acsrf, "op": "approve"})
        assert await _decide(console, editor) == (True, "v2")
        # Anna asks for v1 back: nothing is published yet, a submitted draft holds v1's content.
        resp = await anna.post(console.url + "/console/history/1/rollback", data={"csrf": acsrf, "reason": "incident"})
        html = await resp.text()
        rollback_url = str(resp.url)
        assert resp.status == 200 and ">submitted<" in html and "publishes the content of v1" in html
        assert "Contributors (created, saved or submitted it; none of them may review it): anna." in html
        assert await _decide(console, editor) == (True, "v2")
        draft = await console.app[DB_POOL].fetchrow(
            "SELECT yaml, tests, restores_version FROM console_drafts WHERE restores_version IS NOT NULL")
        assert (draft["yaml"], draft["restores_version"]) == (POLICY, 1)
        # She may not approve her own rollback; another approver may.
        resp = await anna.post(rollback_url + "/review", data={"csrf": acsrf, "op": "approve"}, allow_redirects=False)
        assert resp.status == 403 and "contributors: anna" in await resp.text()
        assert await _decide(console, editor) == (True, "v2")
        resp = await max_.post(rollback_url + "/review", data={"csrf": mcsrf, "op": "approve", "comment": "ok"})
        assert resp.status == 200 and "published as v3" in await resp.text()
        assert await _decide(console, editor) == (False, "v3")
        html = await (await anna.get(console.url + "/console/history")).text()
        assert "roll back to v1: incident" in html and "Roll back (for review)" in html
        resp = await anna.post(console.url + "/console/history/99/rollback", data={"csrf": acsrf},
                               allow_redirects=False)
        assert resp.status == 404

        async def audited():
            rows = await console.app[DB_POOL].fetch(
                "SELECT action, extra FROM audit_events WHERE event_type IN ('console', 'policy_change')")
            return {r["action"] for r in rows} >= {"rollback_request", "rollback"}
        await eventually(audited)


async def test_whoever_saved_or_submitted_a_draft_cannot_approve_it(console):
    """Four eyes hold for everyone who wrote the content, not only the draft's creator: an
    editor+approver who rewrites someone else's draft cannot publish it alone."""
    eddie, ecsrf = await console.signed_in("eddie")
    max_, mcsrf = await console.signed_in("max")
    anna, acsrf = await console.signed_in("anna")
    async with eddie, max_, anna:
        resp = await eddie.post(console.url + "/console/drafts", data={"title": "typo fix", "csrf": ecsrf})
        url = str(resp.url)
        form = {"csrf": mcsrf, "title": "typo fix", "yaml": MINE, "tests": "", "comment": "typo"}
        resp = await max_.post(url, data={**form, "op": "submit"})
        html = await resp.text()
        assert resp.status == 200 and ">submitted<" in html
        assert "none of them may review it): eddie, max." in html and 'id="own-change"' in html
        resp = await max_.post(url + "/review", data={"csrf": mcsrf, "op": "approve"}, allow_redirects=False)
        assert resp.status == 403
        assert "you contributed to this change (contributors: eddie, max)" in await resp.text()
        resp = await max_.post(url + "/review", data={"csrf": mcsrf, "op": "reject"}, allow_redirects=False)
        assert resp.status == 403
        assert await _decide(console, max_, subject="max", roles=()) == (False, "v1")
        # Someone who wrote none of it reviews it.
        resp = await anna.post(url + "/review", data={"csrf": acsrf, "op": "approve"})
        assert resp.status == 200 and "published as v2" in await resp.text()


async def test_author_cannot_approve_own_change_unless_configured(tmp_path, pg_dsn):
    for allowed in (False, True):
        (tmp_path / str(allowed)).mkdir()
        async with running_console(tmp_path / str(allowed), pg_dsn, console_self_approve=allowed) as console:
            both, csrf = await console.signed_in("max")
            async with both:
                resp = await both.post(console.url + "/console/drafts", data={"title": "t", "csrf": csrf})
                url = str(resp.url)
                await both.post(url, data={"csrf": csrf, "yaml": FIXED, "tests": "", "title": "t", "op": "submit"})
                resp = await both.post(url + "/review", data={"csrf": csrf, "op": "approve"}, allow_redirects=False)
                assert resp.status == (303 if allowed else 403)


async def test_emergency_block_takes_effect_at_once_and_lifting_is_a_draft(console):
    approver, csrf = await console.signed_in("anna")
    async with approver:
        assert (await _decide(console, approver, "dev@example.com", ()))[0] is False
        data = {"csrf": csrf, "op": "block", "kind": "user", "value": "admin@example.com", "reason": ""}
        resp = await approver.post(console.url + "/console/block", data=data)
        assert resp.status == 400 and "reason is required" in await resp.text()
        async with approver.post(console.url + "/access/v1/evaluation",
                                 json=tool_eval("admin@example.com", "any", "tool")) as r:
            assert (await r.json())["decision"] is True
        resp = await approver.post(console.url + "/console/block", data={**data, "reason": "stolen laptop"})
        assert resp.status == 200 and "emergency-block: user admin@example.com" in await resp.text()
        async with approver.post(console.url + "/access/v1/evaluation",
                                 json=tool_eval("admin@example.com", "any", "tool")) as r:
            body = await r.json()
        assert body["decision"] is False and "emergency-block" in body["context"]["reason"]
        assert console.app[STATE].current.version == "v2"
    editor, ecsrf = await console.signed_in("eddie")
    async with editor:
        resp = await editor.post(console.url + "/console/block", data={
            "csrf": ecsrf, "op": "lift", "rule": "emergency-block: user admin@example.com"})
        assert "/console/drafts/" in str(resp.url)
        lift_url = str(resp.url)
        html = await (await editor.get(lift_url + "/diff")).text()
        assert "rule removed" in html
        assert "is active now" not in await (await editor.get(lift_url)).text()
        approver, csrf = await console.signed_in("anna")
        async with approver:
            await approver.post(console.url + "/console/block", data={
                "csrf": csrf, "op": "block", "kind": "server", "value": "legacy", "reason": "retired"})
        html = await (await editor.get(lift_url)).text()
        assert "This draft started from v2, but v3 is active now" in html


XSS = "<script>alert(1)</script>"


async def test_xss_payloads_in_roles_rules_tools_and_audit_render_inert(console):
    editor, csrf = await console.signed_in("eddie")
    async with editor:
        evil = POLICY.replace("  analyst:", f'  "{XSS}":\n    permissions: []\n  analyst:').replace(
            'name: "Block dangerous tools in production"', f'name: "{XSS}"')
        resp = await editor.post(console.url + "/console/drafts", data={"title": XSS, "csrf": csrf})
        url = str(resp.url)
        await editor.post(url, data={"csrf": csrf, "title": XSS, "yaml": evil, "tests": "", "op": "save"})
        await console.app[DB_POOL].execute(
            "INSERT INTO audit_events (event_id, ts, service, event_type, subject, mcp_server, tool, decision, "
            "decision_id, parameters) VALUES (gen_random_uuid(), now(), 'gateway', 'tool_call', $1, $1, $1, 'deny', "
            "$1, $2)", XSS, '{"q": "' + XSS + '"}')
        from urllib.parse import quote
        for path in (url, url + "/diff", "/console/drafts", "/console/decisions",
                     f"/console/decisions/{quote(XSS, safe='')}",
                     f"/console/whatif?subject={quote(XSS)}&server={quote(XSS)}&tool={quote(XSS)}"):
            html = await (await editor.get(path if path.startswith("http") else console.url + path)).text()
            assert XSS not in html, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path
    approver, acsrf = await console.signed_in("anna")
    async with approver:
        resp = await approver.post(console.url + "/console/block", data={
            "csrf": acsrf, "op": "block", "kind": "user", "value": XSS, "reason": XSS})
        assert resp.status == 200
        for path in ("/console/policy", "/console/block", "/console/history", "/console/"):
            html = await (await approver.get(console.url + path)).text()
            assert XSS not in html, path
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


async def test_approval_reaches_every_pdp_replica(tmp_path, pg_dsn):
    from aiohttp import web

    from pdp.app import create_app
    from tests.integration.pdp_helpers import pdp_settings

    (tmp_path / "b").mkdir()
    replica = web.AppRunner(create_app(pdp_settings(tmp_path / "b", pg_dsn)), access_log=None)
    await replica.setup()
    await web.TCPSite(replica, "127.0.0.1", 0).start()
    other = f"http://127.0.0.1:{replica.addresses[0][1]}"
    try:
        async with running_console(tmp_path, pg_dsn) as console:
            editor, csrf = await console.signed_in("eddie")
            approver, acsrf = await console.signed_in("anna")
            async with editor, approver:
                resp = await editor.post(console.url + "/console/drafts", data={"title": "r", "csrf": csrf})
                url = str(resp.url)
                await editor.post(url, data={"csrf": csrf, "title": "r", "yaml": FIXED, "tests": "", "op": "submit"})
                await approver.post(url + "/review", data={"csrf": acsrf, "op": "approve"})

                async def replica_decides():
                    async with editor.post(other + "/access/v1/evaluation",
                                           json=tool_eval("ann", "reports", "read_report", roles=("analyst",))) as r:
                        body = await r.json()
                    return (body["decision"], body["context"]["policy_version"]) == (True, "v2")
                await eventually(replica_decides)
    finally:
        await replica.cleanup()
