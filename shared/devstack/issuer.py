"""A development OIDC issuer: discovery + JWKS + locally minted Keycloak-shaped tokens.

Only for `make run`; it signs with a key generated at start and never leaves loopback.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import RSAKey

from shared.jsonutil import json_response

REALM_PATH = "/realms/mcpgw"


class DevIssuer:
    """Holds the signing key and serves the OIDC documents a gateway needs."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.issuer = self.base_url + REALM_PATH
        self.key = RSAKey.generate_key(2048, parameters={"kid": "dev-" + uuid.uuid4().hex[:8]})

    def mint(self, subject: str, roles: list[str], audience: str, ttl: int = 8 * 3600) -> str:
        """A signed access token shaped like Keycloak's."""
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "azp": "mcpgw-cli",
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "preferred_username": subject,
            "email": subject,
            "realm_access": {"roles": roles},
            "scope": "openid profile email",
        }
        header = {"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.key)

    def app(self) -> web.Application:
        """Discovery and JWKS routes."""
        app = web.Application()

        async def discovery(_request: web.Request) -> web.Response:
            return json_response({
                "issuer": self.issuer,
                "jwks_uri": self.issuer + "/protocol/openid-connect/certs",
                "token_endpoint": self.issuer + "/protocol/openid-connect/token",
            })

        async def jwks(_request: web.Request) -> web.Response:
            return json_response({"keys": [self.key.as_dict(private=False)]})

        app.router.add_get(REALM_PATH + "/.well-known/openid-configuration", discovery)
        app.router.add_get(REALM_PATH + "/protocol/openid-connect/certs", jwks)
        return app
