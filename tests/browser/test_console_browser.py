"""The console in a real browser: editor edits, sees the inline error, fixes it, asks what-if and
impact, submits; an approver approves; a real gateway's next decision uses the new version; a
roll back is a draft its asker cannot approve (four eyes, shown in the page), a second approver
publishes it and the old decision is back; an emergency block stops the next gateway call. Screenshots of each
page land in .artifacts/console/."""

from __future__ import annotations

import re

from playwright.async_api import expect

from gateway.app import create_app as create_gateway
from gateway.settings import load_gateway_settings
from tests.browser.browser import browser, new_page, shot
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.fixtures.oidc import running_issuer
from tests.integration.console_harness import running_console
from tests.integration.gateway_harness import AUDIENCE, servers_yaml, start_site
from tests.integration.pdp_helpers import eventually

NEW_RULE = """  - name: "ann may echo reports"
    condition:
      user: ann@example.com
      mcp_server: reports
      tool_name: echo
    action: allow
    priority: 10
"""


async def sign_in(page, url: str, login: str) -> None:
    await page.goto(url + "/console/")
    await page.locator("input[name=login]").fill(login)
    await page.locator("input[name=password]").fill("any")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()


async def test_editor_to_approver_to_gateway_and_back(tmp_path, pg_dsn, mcp_backend: Backend):  # noqa: F811
    async with running_console(tmp_path, pg_dsn) as console, running_issuer() as agents, browser() as b:
        servers = tmp_path / "mcp_servers.yaml"
        servers.write_text(servers_yaml({"reports": {"url": mcp_backend.url}}))
        settings = load_gateway_settings(environ={
            "DATABASE_URL": pg_dsn, "MCPGW_DATA_DIR": str(tmp_path / "gw"), "AUDIT_LOG_FILE": str(tmp_path / "a.jsonl"),
            "MCPGW_GATEWAY_ISSUER": agents.issuer, "MCPGW_GATEWAY_AUDIENCE": AUDIENCE,
            "MCPGW_GATEWAY_PDP_URL": console.url, "MCPGW_GATEWAY_ENVIRONMENT": "development", "MCPGW_GATEWAY_SERVERS_FILE": str(servers)}, dotenv=None)
        runner, gw_url = await start_site(create_gateway(settings))
        http = console.client()
        try:
            token = agents.mint("ann@example.com", username="ann@example.com", roles=(), audience=AUDIENCE)

            async def gateway_status() -> int:
                async with http.post(gw_url + "/mcp/invoke?mcp_server=reports",
                                     json={"tool_name": "echo", "parameters": {"text": "hi"}},
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    return resp.status

            assert await gateway_status() == 403

            editor = await new_page(b)
            await sign_in(editor, console.url, "eddie")
            await shot(editor, "overview")
            for name, label in (("policy", "Policy"), ("decisions", "Decisions"), ("least-privilege", "Least privilege"),
                                ("history", "History")):
                await editor.get_by_role("link", name=label, exact=True).click()
                await expect(editor.get_by_role("heading", name=label)).to_be_visible()
                await shot(editor, name)
            await editor.get_by_role("link", name="Drafts", exact=True).click()
            await shot(editor, "drafts")
            await editor.get_by_label("Title of the new draft").fill("ann reads reports")
            await editor.get_by_role("button", name="New draft").click()
            yaml_box = editor.get_by_label("Policy YAML")
            original = await yaml_box.input_value()
            broken = original.replace("default_policy: deny", NEW_RULE + "    colour: red\ndefault_policy: deny")
            await yaml_box.fill(broken)
            await editor.get_by_role("button", name="Validate").click()
            await expect(editor.locator("tr.bad")).to_contain_text("colour: red")
            await expect(editor.locator(".line-error")).to_contain_text("colour")
            await shot(editor, "editor-error")
            await editor.get_by_label("Policy YAML").fill(broken.replace("    colour: red\n", ""))
            await editor.get_by_role("button", name="Save draft").click()
            await expect(editor.get_by_role("status")).to_have_text("Draft saved.")
            await editor.get_by_role("link", name="Diff against active").click()
            await expect(editor.locator("td.change").first).to_have_text("rule added")
            await shot(editor, "diff")
            await editor.go_back()
            await editor.get_by_role("link", name="What-if", exact=True).last.click()
            await editor.get_by_label("Draft to compare").select_option(index=1)
            await editor.get_by_label("Subject (user id)").fill("ann@example.com")
            await editor.get_by_label("Server").fill("reports")
            await editor.get_by_label("Tool", exact=True).fill("echo")
            await editor.get_by_role("button", name="Decide").click()
            rows = editor.locator("tbody tr")
            await expect(rows.nth(0)).to_contain_text("deny")
            await expect(rows.nth(1)).to_contain_text("allow by rule 'ann may echo reports'")
            await shot(editor, "whatif")
            await editor.get_by_role("link", name="Impact", exact=True).click()
            await editor.get_by_role("button", name="Replay").click()
            await expect(editor.get_by_text("deny → allow")).to_be_visible()
            await expect(editor.locator("td", has_text="ann@example.com").first).to_be_visible()
            await shot(editor, "impact")
            await editor.get_by_role("link", name="Drafts", exact=True).click()
            await editor.get_by_role("link", name=re.compile(r"Draft \d+")).first.click()
            await editor.get_by_label("Comment for the reviewer").fill("ann needs the echo report")
            await editor.get_by_role("button", name="Submit for review").click()
            await expect(editor.locator(".status.submitted").first).to_be_visible()
            await shot(editor, "submitted")

            approver = await new_page(b)
            await sign_in(approver, console.url, "anna")
            await approver.get_by_role("link", name="Drafts", exact=True).click()
            await approver.get_by_role("link", name=re.compile(r"Draft \d+")).first.click()
            await approver.get_by_label("Review comment").fill("approved")
            await shot(approver, "review")
            await approver.get_by_role("button", name="Approve").click()
            await expect(approver.get_by_text("published as v2")).to_be_visible()
            assert await eventually(lambda: _is(gateway_status, 200))

            await approver.get_by_role("link", name="History", exact=True).click()
            await expect(approver.locator("tbody tr").first).to_contain_text("anna")
            # Roll back is four eyes: anna's click makes a draft of v1 she may not approve herself.
            await _row(approver, "v1").get_by_role("button", name="Roll back (for review)").click()
            await expect(approver.get_by_text("approving publishes the content of v1")).to_be_visible()
            await expect(approver.locator("#own-change")).to_contain_text("You contributed to this change")
            await expect(approver.get_by_role("button", name="Approve")).to_have_count(0)
            await shot(approver, "rollback-own-change")
            assert await gateway_status() == 200
            second = await new_page(b)
            await sign_in(second, console.url, "max")
            await second.goto(approver.url)
            await second.get_by_role("button", name="Approve").click()
            await expect(second.get_by_text("published as v3")).to_be_visible()
            assert await eventually(lambda: _is(gateway_status, 403))

            # Emergency block: v2's content back (reviewed the same way), then block ann; the next call is refused.
            await approver.get_by_role("link", name="History", exact=True).click()
            await _row(approver, "v2").get_by_role("button", name="Roll back (for review)").click()
            await second.goto(approver.url)
            await second.get_by_role("button", name="Approve").click()
            await expect(second.get_by_text("published as v4")).to_be_visible()
            assert await eventually(lambda: _is(gateway_status, 200))
            await approver.get_by_role("link", name="Emergency block", exact=True).click()
            await approver.get_by_label("Name").fill("ann@example.com")
            await approver.get_by_label("Reason").fill("suspicious activity")
            await approver.get_by_role("button", name="Block").click()
            await expect(approver.get_by_text("emergency-block: user ann@example.com")).to_be_visible()
            await shot(approver, "block")
            assert await eventually(lambda: _is(gateway_status, 403))
            await approver.get_by_role("link", name="Decisions", exact=True).click()
            await approver.get_by_label("User").fill("ann@example.com")
            await approver.get_by_role("button", name="Filter").click()
            await expect(approver.locator("td.deny").first).to_be_visible()
            await shot(approver, "decisions")
            await approver.locator("tbody tr", has=approver.locator("td.deny")).filter(
                has_text="pdp").first.get_by_role("link").click()
            await expect(approver.get_by_role("heading", name="Deciding statement")).to_be_visible()
            await expect(approver.locator("section.card p").first).to_have_text(
                "deny by rule 'emergency-block: user ann@example.com' (policy v5)")
            await expect(approver.get_by_role("heading", name=re.compile(r"^gateway · "))).to_be_visible()
            await shot(approver, "decision")
        finally:
            await http.close()
            await runner.cleanup()


def _row(page, version: str):
    """The History row of `version` (its first cell; other rows may name it in their comments)."""
    return page.locator("tbody tr").filter(has=page.locator("td:first-child", has_text=re.compile(f"^{version}$")))


async def _is(check, expected: int) -> bool:
    return await check() == expected


XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(2)>')


async def test_xss_payloads_stay_text_in_the_browser_and_sessions_expire(tmp_path, pg_dsn):
    from shared.keys import DB_POOL

    async with running_console(tmp_path, pg_dsn) as console, browser() as b:
        page = await new_page(b)
        dialogs: list[str] = []
        page.on("dialog", lambda d: dialogs.append(d.message))
        await sign_in(page, console.url, "anna")
        pool = console.app[DB_POOL]
        for payload in XSS:
            await page.get_by_role("link", name="Emergency block", exact=True).click()
            await page.get_by_label("Name").fill(payload)
            await page.get_by_label("Reason").fill(payload)
            await page.get_by_role("button", name="Block").click()
            await expect(page.locator("td.deny", has_text=payload)).to_be_visible()
            await pool.execute(
                "INSERT INTO audit_events (event_id, ts, service, event_type, subject, mcp_server, tool, decision, "
                "reason, parameters) VALUES (gen_random_uuid(), now(), 'gateway', 'mcp_request', $1, $1, $1, 'deny', $1, "
                "jsonb_build_object('q', $1::text))", payload)
        for label, payload in (("Policy", XSS[0]), ("Decisions", XSS[0]), ("History", XSS[0]), ("Overview", XSS[1])):
            await page.get_by_role("link", name=label, exact=True).click()
            await expect(page.get_by_text(payload).first).to_be_visible()
        await shot(page, "xss-inert")
        assert dialogs == [] and await page.locator("img[src=x]").count() == 0
        # An idle session ends: the next page goes through sign-in again (the provider's own session
        # still exists, so it signs the user straight back in, as a new console session).
        old = await pool.fetchval("SELECT id_hash FROM console_sessions")
        await pool.execute("UPDATE console_sessions SET last_seen = now() - interval '1 day'")
        visited: list[str] = []
        page.on("request", lambda r: visited.append(r.url))
        await page.get_by_role("link", name="Policy", exact=True).click()
        await expect(page.get_by_role("heading", name="Policy")).to_be_visible()
        assert any("/console/login?next=" in u for u in visited) and any("/console/callback" in u for u in visited)
        assert await pool.fetchval("SELECT count(*) FROM console_sessions WHERE id_hash = $1", old) == 0
        # Sign out here, then at the provider too: the next sign-in asks for the password again.
        await page.get_by_role("button", name="Sign out").click()
        await page.get_by_role("link", name="Sign out of the sign-in provider too").click()
        await page.get_by_role("button", name="Yes, sign me out").click()
        await expect(page.get_by_text("You are signed out of the sign-in provider too.")).to_be_visible()
        await shot(page, "signed-out")
        await page.get_by_role("link", name="Sign in").click()
        await expect(page.locator("input[name=login]")).to_be_visible()
