"""Console sign-in through a real OIDC provider (oidc-provider), roles, CSRF, headers, expiry."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.fixtures.oidc_provider import sign_in
from tests.integration.console_harness import running_console

PAGES = ["/console/", "/console/policy", "/console/drafts", "/console/whatif", "/console/impact",
         "/console/history", "/console/decisions", "/console/least-privilege", "/console/block"]


@pytest.fixture
async def console(tmp_path, pg_dsn):
    async with running_console(tmp_path, pg_dsn) as c:
        yield c


async def test_sign_in_uses_code_flow_with_pkce_state_and_nonce(console):
    async with console.client() as http:
        resp = await http.get(console.url + "/console/login", allow_redirects=False)
        assert resp.status == 302
        cookie = resp.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/console" in cookie
        query = parse_qs(urlsplit(resp.headers["Location"]).query)
        assert query["response_type"] == ["code"] and query["code_challenge_method"] == ["S256"]
        assert query["state"][0] and query["nonce"][0] and len(query["code_challenge"][0]) == 43
        assert "code_verifier" not in query


async def test_each_role_signs_in_and_sees_every_page(console):
    for login in ("vera", "eddie", "anna"):
        http, _ = await console.signed_in(login)
        async with http:
            for path in PAGES:
                resp = await http.get(console.url + path)
                assert resp.status == 200, (login, path, await resp.text())
                html = await resp.text()
                for label in ("Overview", "Policy", "Drafts", "What-if", "Impact", "History", "Decisions",
                              "Least privilege"):
                    assert f">{label}</a>" in html


async def test_unauthenticated_pages_redirect_to_sign_in_and_posts_are_refused(console):
    async with console.client() as http:
        resp = await http.get(console.url + "/console/decisions?subject=a&tool=b", allow_redirects=False)
        location = urlsplit(resp.headers["Location"])
        assert resp.status == 302 and location.path == "/console/login"
        assert parse_qs(location.query) == {"next": ["/console/decisions?subject=a&tool=b"]}
        resp = await http.post(console.url + "/console/drafts", data={"title": "x"}, allow_redirects=False)
        assert resp.status == 401


async def test_user_without_console_role_is_forbidden(console):
    async with console.client() as http:
        resp = await sign_in(http, console.url, "nobody")
        assert resp.status == 403 and "policy-viewer" in await resp.text()


async def test_security_headers_on_pages_and_errors(console):
    http, _ = await console.signed_in("vera")
    async with http:
        for path in ("/console/", "/console/drafts/999", "/console/static/console.css"):
            resp = await http.get(console.url + path)
            csp = resp.headers["Content-Security-Policy"]
            assert "unsafe-inline" not in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
            assert resp.headers["X-Frame-Options"] == "DENY"
            assert resp.headers["Referrer-Policy"] == "same-origin"


async def test_callback_refuses_a_wrong_state_or_foreign_sign_in(console):
    async with console.client() as http:
        resp = await http.get(console.url + "/console/callback?code=x&state=forged")
        assert resp.status == 400
        await http.get(console.url + "/console/login", allow_redirects=False)
        resp = await http.get(console.url + "/console/callback?code=x&state=forged")
        assert resp.status == 400 and "not started here" in await resp.text()


async def test_open_redirect_after_sign_in_is_refused(console):
    async with console.client() as http:
        await http.get(console.url + "/console/login?next=//evil.example/x", allow_redirects=False)
        resp = await sign_in(http, console.url, "vera")
        assert str(resp.url) == console.url + "/console/"


async def test_viewer_gets_403_on_every_editing_endpoint(console):
    http, csrf = await console.signed_in("vera")
    async with http:
        for path, data in (("/console/drafts", {"title": "t"}), ("/console/drafts/1", {"op": "save", "yaml": ""}),
                           ("/console/drafts/1/review", {"op": "approve"}), ("/console/history/1/rollback", {}),
                           ("/console/block", {"op": "block", "kind": "user", "value": "x", "reason": "r"}),
                           ("/console/least-privilege", {"days": "30"})):
            resp = await http.post(console.url + path, data={**data, "csrf": csrf}, allow_redirects=False)
            assert resp.status == 403, path


async def test_post_without_or_with_a_wrong_csrf_token_is_refused(console):
    http, csrf = await console.signed_in("eddie")
    async with http:
        for data in ({"title": "x"}, {"title": "x", "csrf": "wrong"}):
            resp = await http.post(console.url + "/console/drafts", data=data, allow_redirects=False)
            assert resp.status == 403 and "CSRF" in await resp.text()
        resp = await http.post(console.url + "/console/drafts", data={"title": "x", "csrf": csrf},
                               headers={"Origin": "http://evil.example"}, allow_redirects=False)
        assert resp.status == 403
        resp = await http.post(console.url + "/console/drafts", data={"title": "x", "csrf": csrf},
                               allow_redirects=False)
        assert resp.status == 303


async def test_idle_session_expires_and_logout_ends_the_session(console):
    from shared.keys import DB_POOL

    http, csrf = await console.signed_in("vera")
    async with http:
        assert (await http.get(console.url + "/console/", allow_redirects=False)).status == 200
        await console.app[DB_POOL].execute("UPDATE console_sessions SET last_seen = now() - interval '2 hours'")
        assert (await http.get(console.url + "/console/", allow_redirects=False)).status == 302
    http, csrf = await console.signed_in("vera")
    async with http:
        resp = await http.post(console.url + "/console/logout", data={"csrf": csrf}, allow_redirects=False)
        assert resp.status == 302 and resp.headers["Location"] == "/console/signed-out"
        assert (await http.get(console.url + "/console/", allow_redirects=False)).status == 302


async def test_pending_sign_ins_are_bounded(console, monkeypatch):
    from pdp.ui import sessions

    monkeypatch.setattr(sessions, "MAX_PENDING_LOGINS", 2)
    async with console.client() as http:
        for _ in range(2):
            assert (await http.get(console.url + "/console/login", allow_redirects=False)).status == 302
        resp = await http.get(console.url + "/console/login", allow_redirects=False)
        assert resp.status == 503 and "too many sign-ins" in await resp.text()
