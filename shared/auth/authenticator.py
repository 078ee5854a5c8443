"""`Authenticator`: Authorization header -> validated `Principal`, with a bounded token cache."""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from shared import tracing
from shared.auth.claims import ClaimMapping, check_registered_claims, to_principal
from shared.auth.errors import (
    INSUFFICIENT_SCOPE,
    INVALID_REQUEST,
    INVALID_TOKEN,
    MISSING_CREDENTIALS,
    AuthError,
)
from shared.auth.jwks import JwksCache, JwksUnavailable
from shared.auth.jwt import DEFAULT_ALGORITHMS, check_alg, check_algorithms, read_header, verify
from shared.auth.principal import Principal


@dataclass(frozen=True)
class AuthConfig:
    """How tokens are validated; give `issuer` (discovery) or `jwks_url` (or both)."""

    audience: str
    issuer: str | None = None
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    leeway: float = 30.0
    mapping: ClaimMapping = field(default_factory=ClaimMapping)
    required_scopes: tuple[str, ...] = ()
    jwks_refetch_interval: float = 30.0
    jwks_max_age: float = 3600.0
    http_timeout: float = 5.0
    cache_size: int = 10_000
    cache_ttl: float = 300.0  # cap, so a key withdrawn from the JWKS stops working soon

    def __post_init__(self) -> None:
        problems = []
        if not self.audience:
            problems.append("audience is required")
        if not self.issuer and not self.jwks_url:
            problems.append("issuer or jwks_url is required")
        try:
            check_algorithms(self.algorithms)
        except ValueError as exc:
            problems.append(str(exc))
        if not 0 <= self.leeway <= 300:
            problems.append("leeway must be between 0 and 300 seconds")
        if self.cache_size < 0 or self.cache_ttl < 0:
            problems.append("cache_size and cache_ttl must not be negative")
        if problems:
            raise ValueError("invalid auth config: " + "; ".join(problems))


def token_digest(token: str) -> bytes:
    """Cache key for a token: its SHA-256, so the raw token is never held as a key or logged."""
    return hashlib.sha256(token.encode()).digest()


def authorization_header(headers: Any) -> str | None:
    """The one `Authorization` header of a request (a multidict); two or more are refused (400).

    With two, "the first wins" in one component and "the last wins" in another lets a proxy and
    the gateway disagree about who is calling.
    """
    values = headers.getall("Authorization", [])
    if len(values) > 1:
        raise AuthError(INVALID_REQUEST, "more than one Authorization header", status=400)
    return values[0] if values else None


def bearer_token(authorization_header: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or AuthError(invalid_request)."""
    if authorization_header is None or not authorization_header.strip():
        raise AuthError(INVALID_REQUEST, MISSING_CREDENTIALS)
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise AuthError(INVALID_REQUEST, "Authorization header must be 'Bearer <token>'")
    return token


class Authenticator:
    """Validates bearer JWTs against one issuer's keys and maps their claims to a Principal."""

    def __init__(
        self,
        config: AuthConfig,
        session: aiohttp.ClientSession,
        *,
        clock: Callable[[], float] = time.time,
        on_jwks_refresh: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self._clock = clock
        self.jwks = JwksCache(
            session,
            jwks_url=config.jwks_url,
            issuer=config.issuer,
            refetch_interval=config.jwks_refetch_interval,
            max_age=config.jwks_max_age,
            timeout=config.http_timeout,
            on_refresh=on_jwks_refresh,
        )
        self._cache: OrderedDict[bytes, tuple[float, Principal]] = OrderedDict()

    async def warm(self) -> bool:
        """Fetch the signing keys now (best effort); False when the IdP could not be reached."""
        try:
            await self.jwks.get_key(None)
        except JwksUnavailable:
            return False
        return True

    def clear_cache(self) -> None:
        """Forget every validated token."""
        self._cache.clear()

    async def authenticate(self, authorization_header: str | None) -> Principal:
        """Validate the header's bearer token and return its Principal, or raise AuthError."""
        token = bearer_token(authorization_header)
        digest = token_digest(token)
        now = self._clock()
        cached = self._cache.get(digest)
        if cached is not None:
            valid_until, principal = cached
            if now < valid_until:
                self._cache.move_to_end(digest)
                return principal
            del self._cache[digest]
        # A span only for a real verification (signature, keys): a cache hit costs less than a span.
        with tracing.span("auth.verify_token"):
            principal = await self._validate(token, now)
        self._check_scopes(principal)
        self._remember(digest, principal, now)
        return principal

    async def _validate(self, token: str, now: float) -> Principal:
        header = read_header(token)
        alg = check_alg(header, self.config.algorithms)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthError(INVALID_TOKEN, "malformed token")
        try:
            key = await self.jwks.get_key(kid)
        except JwksUnavailable:
            raise AuthError(
                INVALID_TOKEN, "signing keys are unavailable; try again later", status=503
            ) from None
        if key is None:
            raise AuthError(INVALID_TOKEN, "token signing key not recognised")
        claims = verify(token, key, alg)
        check_registered_claims(
            claims,
            issuer=self.config.issuer,
            audience=self.config.audience,
            now=now,
            leeway=self.config.leeway,
        )
        return to_principal(claims, self.config.mapping)

    def _check_scopes(self, principal: Principal) -> None:
        if not principal.has_scopes(self.config.required_scopes):
            raise AuthError(INSUFFICIENT_SCOPE, "token lacks a required scope", status=403)

    def _remember(self, digest: bytes, principal: Principal, now: float) -> None:
        # Never past exp (leeway is not applied here), and never longer than cache_ttl.
        valid_until = min(principal.expires_at, now + self.config.cache_ttl)
        if self.config.cache_size == 0 or valid_until <= now:
            return
        self._cache[digest] = (valid_until, principal)
        self._cache.move_to_end(digest)
        while len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)


def authenticator_ctx(
    config: AuthConfig,
    session_key: web.AppKey[aiohttp.ClientSession],
    auth_key: web.AppKey[Authenticator],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup_ctx that builds the Authenticator on the app's session and warms its JWKS."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        authenticator = Authenticator(config, app[session_key])
        await authenticator.warm()  # a down IdP must not block startup; requests fail closed
        app[auth_key] = authenticator
        yield
        authenticator.clear_cache()

    return ctx
