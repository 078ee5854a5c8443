"""The console's OIDC relying party: authorization code + PKCE, state, nonce, ID token checks.

Built on joserfc through shared.auth (the same signature checks and JWKS cache the gateway uses),
so no second JOSE library is needed. Everything that can be a pure function is one.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp

from shared.auth.claims import resolve_path
from shared.auth.errors import INVALID_TOKEN, AuthError
from shared.auth.jwks import JwksCache, discovery_url
from shared.auth.jwt import check_alg, read_header, verify
from shared.jsonutil import loads

ID_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class OidcError(Exception):
    """Sign-in failed; the message is safe to show the user."""


def random_token(nbytes: int = 32) -> str:
    """A URL-safe random secret."""
    return secrets.token_urlsafe(nbytes)


def pkce_challenge(verifier: str) -> str:
    """The S256 code challenge of a PKCE verifier (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(endpoint: str, *, client_id: str, redirect_uri: str, scopes: list[str], state: str,
                  nonce: str, verifier: str) -> str:
    """The authorization request URL (code flow, PKCE S256)."""
    query = urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": " ".join(scopes), "state": state, "nonce": nonce,
        "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256",
    })
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def check_id_token_claims(claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str,
                          now: float, leeway: float = 30.0) -> None:
    """OIDC Core 3.1.3.7: iss, aud (and azp), exp, iat, nonce. Raise OidcError on the first problem."""
    if claims.get("iss") != issuer:
        raise OidcError("ID token issuer does not match")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in audiences:
        raise OidcError("ID token audience does not include this client")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise OidcError("ID token azp does not name this client")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or now > exp + leeway:
        raise OidcError("ID token expired or has no expiry")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat > now + leeway:
        raise OidcError("ID token has no valid issue time")
    if not isinstance(claims.get("nonce"), str) or not secrets.compare_digest(claims["nonce"], nonce):
        raise OidcError("ID token nonce does not match this sign-in")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise OidcError("ID token has no subject")


def roles_from_claims(claims: Mapping[str, Any], paths: list[str], client_id: str) -> tuple[str, ...]:
    """Every string role found at the configured claim paths, deduplicated in order."""
    seen: dict[str, None] = {}
    for path in paths:
        value = resolve_path(claims, path, client_id)
        for item in value if isinstance(value, list) else []:
            if isinstance(item, str) and item:
                seen.setdefault(item, None)
    return tuple(seen)


def basic_auth(client_id: str, secret: str) -> str:
    """client_secret_basic: both parts form-urlencoded before base64 (RFC 6749 2.3.1)."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True)
class Identity:
    """Who signed in, from a validated ID token."""

    subject: str
    name: str
    roles: tuple[str, ...]


class OidcClient:
    """Talks to one provider over the app's ClientSession; discovery is fetched once, then cached."""

    def __init__(self, session: aiohttp.ClientSession, *, issuer: str, client_id: str,
                 client_secret: str | None, redirect_uri: str, scopes: list[str], roles_claims: list[str]) -> None:
        self.session, self.issuer, self.client_id = session, issuer, client_id
        self.client_secret, self.redirect_uri, self.scopes = client_secret, redirect_uri, scopes
        self.roles_claims = roles_claims
        self.jwks = JwksCache(session, issuer=self.issuer)
        self._meta: dict[str, Any] | None = None

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (issuer checked)."""
        if self._meta is None:
            try:
                async with self.session.get(discovery_url(self.issuer), allow_redirects=False) as resp:
                    if resp.status != 200:
                        raise OidcError(f"the sign-in provider's discovery answered HTTP {resp.status}")
                    meta = loads(await resp.read())
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise OidcError(f"the sign-in provider is unreachable ({type(exc).__name__})") from None
            if not isinstance(meta, dict) or meta.get("issuer") != self.issuer:
                raise OidcError("the sign-in provider's discovery names a different issuer")
            for name in ("authorization_endpoint", "token_endpoint"):
                if not isinstance(meta.get(name), str) or not meta[name].startswith(("https://", "http://")):
                    raise OidcError(f"the sign-in provider's discovery has no {name}")
            self._meta = meta
        return self._meta

    async def start(self, state: str, nonce: str, verifier: str) -> str:
        """The URL to send the browser to."""
        meta = await self.metadata()
        return authorize_url(meta["authorization_endpoint"], client_id=self.client_id,
                             redirect_uri=self.redirect_uri, scopes=self.scopes, state=state, nonce=nonce,
                             verifier=verifier)

    async def end_session_url(self, after: str) -> str | None:
        """RP-initiated logout at the provider (a link the user follows), or None when unsupported."""
        try:
            endpoint = (await self.metadata()).get("end_session_endpoint")
        except OidcError:
            return None
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        query = urlencode({"client_id": self.client_id, "post_logout_redirect_uri": after})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    async def finish(self, code: str, verifier: str, nonce: str) -> Identity:
        """Exchange the code (with the PKCE verifier) and validate the ID token."""
        meta = await self.metadata()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": self.redirect_uri,
                "code_verifier": verifier, "client_id": self.client_id}
        headers = {"Authorization": basic_auth(self.client_id, self.client_secret)} if self.client_secret else {}
        try:
            async with self.session.post(meta["token_endpoint"], data=form, headers=headers,
                                         allow_redirects=False) as resp:
                body = loads(await resp.read())
                if resp.status != 200:
                    raise OidcError(f"the sign-in provider refused the code (HTTP {resp.status})")
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise OidcError(f"token request failed ({type(exc).__name__})") from None
        token = body.get("id_token") if isinstance(body, dict) else None
        if not isinstance(token, str):
            raise OidcError("the sign-in provider returned no ID token")
        claims = await self.verify_id_token(token)
        check_id_token_claims(claims, issuer=self.issuer, client_id=self.client_id, nonce=nonce, now=time.time())
        name = next((claims[k] for k in ("preferred_username", "email", "name")
                     if isinstance(claims.get(k), str) and claims[k]), claims["sub"])
        return Identity(claims["sub"], name, roles_from_claims(claims, self.roles_claims, self.client_id))

    async def verify_id_token(self, token: str) -> dict[str, Any]:
        """The ID token's claims once its signature checks against the provider's JWKS."""
        try:
            header = read_header(token)
            alg = check_alg(header, ID_TOKEN_ALGS)
            key = await self.jwks.get_key(header.get("kid"))
            if key is None:
                raise AuthError(INVALID_TOKEN, "unknown signing key")
            return verify(token, key, alg)
        except AuthError as exc:
            raise OidcError(f"ID token rejected: {exc}") from None
        except Exception as exc:  # JWKS unavailable: fail closed
            raise OidcError(f"ID token could not be checked ({type(exc).__name__})") from None
