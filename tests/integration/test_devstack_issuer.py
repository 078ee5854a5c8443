"""The dev issuer over real HTTP: discovery, password and client-credentials grants, auth code + PKCE.

The authorization-code test walks the flow as a browser and a console would: GET the login page,
POST the chosen user, follow nothing (read the 302), redeem the code with the verifier.
"""

from __future__ import annotations

import base64
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from joserfc import jwt

from mcpgw.devstack.authcode import s256
from mcpgw.devstack.issuer import DevIssuer
from mcpgw.devstack.users import CLI_CLIENT_ID, CLI_CLIENT_SECRET, CONSOLE_CLIENT_ID, DEV_PASSWORD

REDIRECT = "http://127.0.0.1:8181/console/callback"


@pytest.fixture
async def idp(aiohttp_server):
    issuer = DevIssuer("http://127.0.0.1:0")
    server = await aiohttp_server(issuer.app())
    # Discovery must advertise the port we really listen on.
    issuer.base_url = str(server.make_url("")).rstrip("/")
    issuer.issuer = issuer.base_url + "/realms/mcpgw"
    return issuer, server


@pytest.fixture
async def http(idp, aiohttp_client):
    return await aiohttp_client(idp[1])


def claims(issuer: DevIssuer, token: str) -> dict:
    return jwt.decode(token, issuer.key).claims


async def test_discovery_advertises_endpoints_it_serves(idp, http):
    issuer, _ = idp
    async with http.get("/realms/mcpgw/.well-known/openid-configuration") as resp:
        doc = await resp.json()
    assert doc["issuer"] == issuer.issuer and doc["code_challenge_methods_supported"] == ["S256"]
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint"):
        path = urlsplit(doc[key]).path
        method = http.post if key == "token_endpoint" else http.get
        async with method(path) as resp:
            assert resp.status != 404, key
    async with http.get(urlsplit(doc["jwks_uri"]).path) as resp:
        assert (await resp.json())["keys"][0]["kid"] == issuer.key.kid


async def password_token(http, user: str, password: str = DEV_PASSWORD):
    form = {"grant_type": "password", "client_id": CLI_CLIENT_ID, "client_secret": CLI_CLIENT_SECRET,
            "username": user, "password": password}
    return await http.post("/realms/mcpgw/protocol/openid-connect/token", data=form)


async def test_password_grant_gives_keycloak_shaped_roles_per_user(idp, http):
    issuer, _ = idp
    for user, role, ttl in (("alice", "admin", 8 * 3600), ("bob", "agent", 8 * 3600), ("temp", "agent", 60),
                            ("approver", "policy-approver", 8 * 3600)):
        resp = await password_token(http, user)
        body = await resp.json()
        assert resp.status == 200 and body["expires_in"] == ttl, body
        c = claims(issuer, body["access_token"])
        assert c["sub"] == user and c["realm_access"]["roles"] == [role] and c["aud"] == "mcpgw"
        assert c["exp"] - c["iat"] == ttl
    resp = await password_token(http, "bob", "wrong")
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"
    resp = await password_token(http, "mallory")
    assert resp.status == 400 and "alice" in (await resp.json())["error_description"]


async def test_client_credentials_needs_the_secret(idp, http):
    issuer, _ = idp
    url = "/realms/mcpgw/protocol/openid-connect/token"
    resp = await http.post(url, data={"grant_type": "client_credentials"},
                           headers={"Authorization": "Basic " + base64.b64encode(
                               f"{CLI_CLIENT_ID}:{CLI_CLIENT_SECRET}".encode()).decode()})
    assert resp.status == 200
    assert claims(issuer, (await resp.json())["access_token"])["sub"] == "service-account-mcpgw-cli"
    resp = await http.post(url, data={"grant_type": "client_credentials", "client_id": CLI_CLIENT_ID,
                                      "client_secret": "nope"})
    assert resp.status == 401 and (await resp.json())["error"] == "invalid_client"
    resp = await http.post(url, data={"grant_type": "client_credentials", "client_id": CONSOLE_CLIENT_ID})
    assert resp.status == 400 and (await resp.json())["error"] == "unsupported_grant_type"


async def sign_in(http, user: str, challenge: str, state: str, nonce: str) -> str:
    """The browser part: login page, choose `user`, read the redirect; returns the code."""
    params = {"client_id": CONSOLE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
              "scope": "openid", "state": state, "nonce": nonce, "code_challenge": challenge,
              "code_challenge_method": "S256"}
    async with http.get("/realms/mcpgw/protocol/openid-connect/auth", params=params) as resp:
        page = await resp.text()
        assert resp.status == 200 and 'value="approver"' in page
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page))
    assert fields["state"] == state
    async with http.post("/realms/mcpgw/protocol/openid-connect/auth", data={**fields, "user": user},
                         allow_redirects=False) as resp:
        assert resp.status == 302
        location = resp.headers["Location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]  # echoed
    return query["code"][0]


async def redeem(http, code: str, verifier: str, redirect: str = REDIRECT):
    form = {"grant_type": "authorization_code", "client_id": CONSOLE_CLIENT_ID, "code": code,
            "redirect_uri": redirect, "code_verifier": verifier}
    return await http.post("/realms/mcpgw/protocol/openid-connect/token", data=form)


async def test_authorization_code_with_pkce_state_and_nonce(idp, http):
    issuer, _ = idp
    verifier, state, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    code = await sign_in(http, "approver", s256(verifier), state, nonce)
    resp = await redeem(http, code, verifier)
    body = await resp.json()
    assert resp.status == 200, body
    idt = claims(issuer, body["id_token"])
    assert idt["nonce"] == nonce and idt["aud"] == CONSOLE_CLIENT_ID and idt["sub"] == "approver"
    assert idt["realm_access"]["roles"] == ["policy-approver"]
    async with http.get("/realms/mcpgw/protocol/openid-connect/userinfo",
                        headers={"Authorization": "Bearer " + body["access_token"]}) as info:
        assert (await info.json())["preferred_username"] == "approver"
    # A code is good once.
    resp = await redeem(http, code, verifier)
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_grant"


async def test_wrong_verifier_or_redirect_is_refused_and_burns_the_code(http):
    verifier = secrets.token_urlsafe(48)
    code = await sign_in(http, "viewer", s256(verifier), "s", "n")
    resp = await redeem(http, code, secrets.token_urlsafe(48))
    body = await resp.json()
    assert resp.status == 400 and body["error"] == "invalid_grant" and "PKCE" in body["error_description"]
    resp = await redeem(http, code, verifier)  # the right verifier comes too late
    assert resp.status == 400
    code = await sign_in(http, "viewer", s256(verifier), "s", "n")
    resp = await redeem(http, code, verifier, redirect="http://127.0.0.1:1/other")
    assert resp.status == 400 and "redirect_uri" in (await resp.json())["error_description"]


@pytest.mark.parametrize(("change", "needle"), [
    ({"code_challenge_method": "plain"}, "PKCE"),
    ({"redirect_uri": "https://evil.example/cb"}, "redirect_uri"),
    ({"client_id": "nobody"}, "client_id"),
])
async def test_bad_authorization_requests_are_shown_not_redirected(http, change, needle):
    params = {"client_id": CONSOLE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
              "code_challenge": s256("x" * 43), "code_challenge_method": "S256", **change}
    async with http.get("/realms/mcpgw/protocol/openid-connect/auth", params=params,
                        allow_redirects=False) as resp:
        assert resp.status == 400 and needle in await resp.text()


async def test_login_page_escapes_request_values(http):
    params = {"client_id": CONSOLE_CLIENT_ID, "redirect_uri": REDIRECT, "response_type": "code",
              "state": '"><script>x</script>', "code_challenge": s256("x" * 43),
              "code_challenge_method": "S256"}
    async with http.get("/realms/mcpgw/protocol/openid-connect/auth", params=params) as resp:
        page = await resp.text()
    assert "<script>" not in page and "&lt;script&gt;" in page


async def test_userinfo_refuses_foreign_tokens(http):
    other = DevIssuer("http://127.0.0.1:1")
    token = other.mint("x", ["admin"], "mcpgw")
    async with http.get("/realms/mcpgw/protocol/openid-connect/userinfo",
                        headers={"Authorization": "Bearer " + token}) as resp:
        assert resp.status == 401


def test_issuer_app_builds_standalone():
    assert isinstance(DevIssuer("http://127.0.0.1:1").app(), web.Application)
