"""A development OIDC issuer: discovery, JWKS, a token endpoint, authorization code + PKCE, userinfo.

Only for `make run`; it signs with a key generated at start and never leaves loopback. Tokens are
shaped like Keycloak's (`realm_access.roles`), as the gateway's claim mapping expects. Grants:
password and client credentials (`mcpgw token`), authorization code with PKCE S256 (the PDP
console's sign-in). Users and clients: mcpgw/devstack/users.py.
"""

from __future__ import annotations

import base64
import hmac
import time
import uuid
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from mcpgw.devstack import authcode
from mcpgw.devstack.authcode import AuthError
from mcpgw.devstack.users import CLIENTS, DEV_PASSWORD, SERVICE_ACCOUNT, USERS, DevClient, DevUser
from shared.jsonutil import json_response

REALM_PATH = "/realms/mcpgw"
OIDC = REALM_PATH + "/protocol/openid-connect"


class DevIssuer:
    """Holds the signing key and serves the OIDC endpoints a gateway, a CLI and a console need."""

    def __init__(self, base_url: str, audience: str = "mcpgw") -> None:
        self.base_url = base_url.rstrip("/")
        self.issuer = self.base_url + REALM_PATH
        self.audience = audience
        self.key = RSAKey.generate_key(2048, parameters={"kid": "dev-" + uuid.uuid4().hex[:8]})
        self.codes = authcode.CodeStore()

    def endpoint(self, name: str) -> str:
        """The URL of one OIDC endpoint (auth, token, certs, userinfo)."""
        return f"{self.base_url}{OIDC}/{name}"

    def discovery(self) -> dict[str, Any]:
        """The OpenID Provider metadata document."""
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.endpoint("auth"),
            "token_endpoint": self.endpoint("token"),
            "userinfo_endpoint": self.endpoint("userinfo"),
            "jwks_uri": self.endpoint("certs"),
            "response_types_supported": ["code"],
            "grant_types_supported": ["authorization_code", "password", "client_credentials"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "none"],
        }

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key)

    def mint(self, subject: str, roles: list[str], audience: str, ttl: int = 8 * 3600,
             azp: str = "mcpgw-cli") -> str:
        """A signed access token shaped like Keycloak's."""
        now = int(time.time())
        return self._sign({
            "iss": self.issuer, "sub": subject, "aud": audience, "azp": azp, "typ": "Bearer",
            "iat": now, "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex,
            "preferred_username": subject, "email": subject,
            "realm_access": {"roles": roles}, "scope": "openid profile email",
        })

    def mint_for(self, user: DevUser, client_id: str) -> str:
        """An access token for one dev user (the user's own lifetime)."""
        now = int(time.time())
        return self._sign({
            "iss": self.issuer, "sub": user.name, "aud": self.audience, "azp": client_id,
            "typ": "Bearer", "iat": now, "nbf": now, "exp": now + user.ttl, "jti": uuid.uuid4().hex,
            "preferred_username": user.name, "email": user.email,
            "realm_access": {"roles": list(user.roles)}, "scope": "openid profile email",
        })

    def id_token(self, user: DevUser, client_id: str, nonce: str) -> str:
        """An OIDC ID token for the client (audience = client id), carrying the request's nonce."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer, "sub": user.name, "aud": client_id, "azp": client_id,
            "iat": now, "exp": now + min(user.ttl, 3600), "auth_time": now,
            "preferred_username": user.name, "email": user.email,
            "realm_access": {"roles": list(user.roles)},
        }
        if nonce:
            claims["nonce"] = nonce
        return self._sign(claims)

    def token_response(self, user: DevUser, client_id: str, nonce: str | None = None) -> dict[str, Any]:
        """The token endpoint's answer (an ID token when the flow was OIDC)."""
        body: dict[str, Any] = {
            "access_token": self.mint_for(user, client_id), "token_type": "Bearer",
            "expires_in": user.ttl, "scope": "openid profile email",
        }
        if nonce is not None:
            body["id_token"] = self.id_token(user, client_id, nonce)
        return body

    def grant(self, form: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        """Run one token request (pure apart from the code store); AuthError on refusal."""
        client = authenticate_client(form, basic)
        grant_type = form.get("grant_type", "")
        if grant_type not in client.grants:
            raise AuthError("unsupported_grant_type",
                            f"client {client.client_id} may use: {', '.join(sorted(client.grants))}")
        if grant_type == "password":
            user = USERS.get(form.get("username", ""))
            if user is None or not hmac.compare_digest(form.get("password", ""), DEV_PASSWORD):
                raise AuthError("invalid_grant", f"unknown user or wrong password (users: {', '.join(USERS)})")
            return self.token_response(user, client.client_id)
        if grant_type == "client_credentials":
            return self.token_response(SERVICE_ACCOUNT, client.client_id)
        granted = self.codes.redeem(form.get("code", ""), client.client_id, form.get("redirect_uri", ""),
                                    form.get("code_verifier", ""))
        return self.token_response(USERS[granted.user], client.client_id, granted.request.nonce)

    def userinfo(self, token: str) -> dict[str, Any]:
        """Claims of a token this issuer signed and that has not expired."""
        try:
            claims = jwt.decode(token, self.key).claims
        except (JoseError, ValueError) as exc:
            raise AuthError("invalid_token", f"not a token of this issuer: {exc}") from None
        if int(claims.get("exp", 0)) <= time.time():
            raise AuthError("invalid_token", "token expired")
        keep = ("sub", "preferred_username", "email", "realm_access")
        return {k: claims[k] for k in keep if k in claims}

    def app(self) -> web.Application:
        """The issuer's routes."""
        app = web.Application()
        app.router.add_get(REALM_PATH + "/.well-known/openid-configuration", self._discovery)
        app.router.add_get(OIDC + "/certs", self._jwks)
        app.router.add_post(OIDC + "/token", self._token)
        app.router.add_get(OIDC + "/auth", self._auth_page)
        app.router.add_post(OIDC + "/auth", self._auth_submit)
        app.router.add_get(OIDC + "/userinfo", self._userinfo)
        return app

    async def _discovery(self, _request: web.Request) -> web.Response:
        return json_response(self.discovery())

    async def _jwks(self, _request: web.Request) -> web.Response:
        return json_response({"keys": [self.key.as_dict(private=False)]})

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            body = self.grant(form, basic_credentials(request.headers.get("Authorization", "")))
        except AuthError as exc:
            status = 401 if exc.error == "invalid_client" else 400
            return json_response({"error": exc.error, "error_description": exc.description}, status=status)
        return json_response(body, headers={"Cache-Control": "no-store"})

    async def _auth_page(self, request: web.Request) -> web.Response:
        try:
            auth = authcode.check_auth_request(dict(request.query))
        except AuthError as exc:  # never redirect to an unchecked URI: show the error here
            return web.Response(status=400, text=f"{exc.error}: {exc.description}\n")
        return web.Response(text=authcode.login_page(self.endpoint("auth"), auth), content_type="text/html")

    async def _auth_submit(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        try:
            auth = authcode.check_auth_request(form)
        except AuthError as exc:
            return web.Response(status=400, text=f"{exc.error}: {exc.description}\n")
        if form.get("user") not in USERS:
            return web.Response(status=400, text=f"unknown user; choose one of {', '.join(USERS)}\n")
        code = self.codes.issue(auth, form["user"])
        params = {"code": code, "iss": self.issuer} | ({"state": auth.state} if auth.state else {})
        raise web.HTTPFound(authcode.redirect_with(auth.redirect_uri, params))

    async def _userinfo(self, request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        try:
            if not header.lower().startswith("bearer "):
                raise AuthError("invalid_token", "Authorization: Bearer TOKEN required")
            return json_response(self.userinfo(header[7:].strip()))
        except AuthError as exc:
            return json_response({"error": exc.error, "error_description": exc.description}, status=401,
                                 headers={"WWW-Authenticate": f'Bearer error="{exc.error}"'})


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client_id, secret) from `Authorization: Basic ...`, or None."""
    if not header.lower().startswith("basic "):
        return None
    try:
        client_id, _, secret = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return client_id, secret


def authenticate_client(form: dict[str, str], basic: tuple[str, str] | None) -> DevClient:
    """The calling client; a confidential client must present its secret (post or basic)."""
    client_id, secret = basic if basic else (form.get("client_id", ""), form.get("client_secret"))
    client = CLIENTS.get(client_id)
    if client is None:
        raise AuthError("invalid_client", f"unknown client_id {client_id!r} (known: {', '.join(CLIENTS)})")
    if client.secret is not None and not hmac.compare_digest(secret or "", client.secret):
        raise AuthError("invalid_client", f"client {client_id} needs its client_secret")
    return client
