"""Authenticator against a real OIDC issuer on loopback: acceptance, rejections, rotation, caching."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from shared.auth import AuthConfig, Authenticator, AuthError, ClaimMapping, authenticator_ctx
from tests.fixtures.oidc import OidcIssuer, generate_key, running_issuer, unsigned_token


@pytest.fixture
async def oidc_issuer() -> AsyncIterator[OidcIssuer]:
    async with running_issuer() as issuer:
        yield issuer


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_auth(
    issuer: OidcIssuer, session: aiohttp.ClientSession, **overrides: object
) -> Authenticator:
    config = AuthConfig(
        audience=issuer.audience,
        issuer=issuer.issuer,
        leeway=5,
        mapping=ClaimMapping(client_id=issuer.client_id),
        **overrides,  # type: ignore[arg-type]
    )
    return Authenticator(config, session)


def bearer(token: str) -> str:
    return f"Bearer {token}"


async def test_valid_keycloak_style_token(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session)
    token = oidc_issuer.mint(
        "6f1c2a4e",
        username="alice",
        email="alice@example.com",
        roles=["analyst"],
        client_roles=["tool-admin"],
        groups=["/eng"],
        scopes=["openid", "mcp:tools"],
        audience=[oidc_issuer.audience, "account"],
    )
    principal = await auth.authenticate(bearer(token))
    assert principal.subject == "6f1c2a4e"
    assert principal.roles == ("analyst", "tool-admin")
    assert principal.groups == ("/eng",)
    assert principal.scopes == ("openid", "mcp:tools")
    assert principal.claims["preferred_username"] == "alice"
    assert oidc_issuer.discovery_fetches == 1 and oidc_issuer.jwks_fetches == 1


@pytest.mark.parametrize("alg", ["RS256", "ES256", "PS256", "EdDSA"])
async def test_default_algorithms_accepted(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession, alg: str
) -> None:
    oidc_issuer.rotate(alg)
    principal = await make_auth(oidc_issuer, session).authenticate(bearer(oidc_issuer.mint("bob")))
    assert principal.subject == "bob"


async def test_jwks_url_without_discovery(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    config = AuthConfig(
        audience=oidc_issuer.audience, jwks_url=oidc_issuer.jwks_url, issuer=oidc_issuer.issuer
    )
    principal = await Authenticator(config, session).authenticate(bearer(oidc_issuer.mint("carol")))
    assert principal.subject == "carol"
    assert oidc_issuer.discovery_fetches == 0


def _hs256_with_public_key(issuer: OidcIssuer) -> str:
    """The classic key-confusion forgery: HMAC-sign with the RSA public key as the secret."""
    key = issuer.keys[issuer.current_kid]
    secret = key.as_pem(private=False)
    header = {"alg": "HS256", "kid": key.kid, "typ": "JWT"}
    unsigned = unsigned_token(header, issuer.claims("mallory", roles=["admin"])).rsplit(".", 1)[0]
    sig = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return unsigned + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


def _tampered(issuer: OidcIssuer) -> str:
    header, _, sig = issuer.mint("alice").split(".")
    forged = unsigned_token({}, issuer.claims("alice", roles=["admin"])).split(".")[1]
    return f"{header}.{forged}.{sig}"


REJECTIONS = [
    # (name, build header from issuer, expected error, expected description)
    ("expired", lambda i: bearer(i.mint(expires_in=-60)), "invalid_token", "token expired"),
    (
        "not yet valid",
        lambda i: bearer(i.mint(not_before=time.time() + 120)),
        "invalid_token",
        "token not yet valid",
    ),
    (
        "wrong issuer",
        lambda i: bearer(i.mint(issuer="http://evil/realms/x")),
        "invalid_token",
        "token issuer not accepted",
    ),
    (
        "wrong audience",
        lambda i: bearer(i.mint(audience="other-api")),
        "invalid_token",
        "token audience not accepted",
    ),
    # an empty signature segment is rejected before the header is even read
    (
        "alg none",
        lambda i: bearer(unsigned_token({"alg": "none", "kid": i.current_kid}, i.claims())),
        "invalid_token",
        "malformed token",
    ),
    (
        "alg none with sig",
        lambda i: bearer(unsigned_token({"alg": "none"}, i.claims(), b"x")),
        "invalid_token",
        "token algorithm not accepted",
    ),
    (
        "hs256 public key",
        lambda i: bearer(_hs256_with_public_key(i)),
        "invalid_token",
        "token algorithm not accepted",
    ),
    (
        "unknown kid",
        lambda i: bearer(_foreign(i)),
        "invalid_token",
        "token signing key not recognised",
    ),
    ("tampered", lambda i: bearer(_tampered(i)), "invalid_token", "token signature invalid"),
    (
        "alg swapped to other family",
        lambda i: bearer(
            unsigned_token({"alg": "ES256", "kid": i.current_kid}, i.claims(), b"x" * 64)
        ),
        "invalid_token",
        "token algorithm does not match the signing key",
    ),
    ("missing header", lambda i: None, "invalid_request", "missing bearer token"),
    (
        "malformed header",
        lambda i: "Token " + i.mint(),
        "invalid_request",
        "Authorization header must be 'Bearer <token>'",
    ),
    ("malformed token", lambda i: "Bearer not-a-jwt", "invalid_token", "malformed token"),
    (
        "garbage segments",
        lambda i: "Bearer eyJhbGciOiJSUzI1NiJ9.%%%.abc",
        "invalid_token",
        "token signature invalid",
    ),
]


def _foreign(issuer: OidcIssuer) -> str:
    """Signed by a key the issuer never published."""
    stranger = generate_key("RS256")
    issuer.keys[stranger.kid] = stranger  # sign with it, then unpublish
    token = issuer.mint(kid=stranger.kid)
    del issuer.keys[stranger.kid]
    return token


@pytest.mark.parametrize(
    ("name", "build", "error", "description"), REJECTIONS, ids=[r[0] for r in REJECTIONS]
)
async def test_rejections(
    oidc_issuer: OidcIssuer,
    session: aiohttp.ClientSession,
    name: str,
    build,
    error: str,
    description: str,
) -> None:
    auth = make_auth(oidc_issuer, session)
    header = build(oidc_issuer)
    with pytest.raises(AuthError) as info:
        await auth.authenticate(header)
    assert (info.value.error, info.value.description, info.value.status) == (
        error,
        description,
        401,
    )
    if header:
        token = header.split(" ", 1)[-1]
        assert token not in str(info.value) and token.split(".")[0] not in info.value.description


async def test_missing_scope_is_403(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session, required_scopes=("mcp:tools",))
    with pytest.raises(AuthError) as info:
        await auth.authenticate(bearer(oidc_issuer.mint(scopes=["openid"])))
    assert (info.value.error, info.value.status) == ("insufficient_scope", 403)
    assert (
        await auth.authenticate(bearer(oidc_issuer.mint(scopes=["mcp:tools"])))
    ).subject == "user-1"


async def test_rotation_needs_one_refetch(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session)
    await auth.authenticate(bearer(oidc_issuer.mint("a")))
    assert oidc_issuer.jwks_fetches == 1
    oidc_issuer.rotate("ES256", retire_old=True)
    principal = await auth.authenticate(bearer(oidc_issuer.mint("b")))
    assert principal.subject == "b"
    assert oidc_issuer.jwks_fetches == 2
    await auth.authenticate(bearer(oidc_issuer.mint("c")))
    assert oidc_issuer.jwks_fetches == 2


async def test_unknown_kid_flood_is_rate_limited(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session)
    await auth.authenticate(bearer(oidc_issuer.mint()))
    valid_claims = oidc_issuer.claims()
    flood = [
        bearer(unsigned_token({"alg": "RS256", "kid": f"bogus-{n}"}, valid_claims, b"x" * 256))
        for n in range(100)
    ]
    results = await asyncio.gather(*(auth.authenticate(h) for h in flood), return_exceptions=True)
    assert all(
        isinstance(r, AuthError) and r.description == "token signing key not recognised"
        for r in results
    )
    for header in flood[:20]:  # and sequentially afterwards: still no more fetches
        with pytest.raises(AuthError):
            await auth.authenticate(header)
    assert oidc_issuer.jwks_fetches <= 2
    assert oidc_issuer.discovery_fetches == 1


async def test_cold_flood_single_flight(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session)
    tokens = [bearer(oidc_issuer.mint(f"u{n}")) for n in range(50)]
    principals = await asyncio.gather(*(auth.authenticate(t) for t in tokens))
    assert [p.subject for p in principals] == [f"u{n}" for n in range(50)]
    assert oidc_issuer.jwks_fetches == 1 and oidc_issuer.discovery_fetches == 1


async def test_idp_down_fails_closed_then_recovers(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session)
    oidc_issuer.fail_jwks = True
    with pytest.raises(AuthError) as info:
        await auth.authenticate(bearer(oidc_issuer.mint()))
    assert info.value.status == 503 and info.value.error == "invalid_token"
    assert not await auth.warm()
    oidc_issuer.fail_jwks = False
    auth.jwks._last_failure = -float("inf")  # skip the retry interval instead of sleeping
    assert (await auth.authenticate(bearer(oidc_issuer.mint("back")))).subject == "back"


async def test_outage_keeps_known_keys(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session, jwks_max_age=0.0)
    await auth.authenticate(bearer(oidc_issuer.mint("a")))
    oidc_issuer.fail_jwks = True
    assert (await auth.authenticate(bearer(oidc_issuer.mint("b")))).subject == "b"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_token_cache_never_outlives_exp(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    clock = Clock()
    config = AuthConfig(audience=oidc_issuer.audience, issuer=oidc_issuer.issuer, leeway=0)
    auth = Authenticator(config, session, clock=clock)
    token = bearer(oidc_issuer.mint("a", expires_in=30))
    first = await auth.authenticate(token)
    oidc_issuer.keys.clear()  # a cache hit must not need the keys
    assert await auth.authenticate(token) is first
    clock.now = first.expires_at + 0.001
    with pytest.raises(AuthError) as info:
        await auth.authenticate(token)
    assert info.value.description == "token expired"


async def test_token_cache_is_bounded(
    oidc_issuer: OidcIssuer, session: aiohttp.ClientSession
) -> None:
    auth = make_auth(oidc_issuer, session, cache_size=3)
    tokens = [bearer(oidc_issuer.mint(f"u{n}")) for n in range(5)]
    for token in tokens:
        await auth.authenticate(token)
    assert len(auth._cache) == 3
    assert all(isinstance(k, bytes) and len(k) == 32 for k in auth._cache)


SESSION = web.AppKey("session", aiohttp.ClientSession)
AUTH = web.AppKey("auth", Authenticator)


async def test_authenticator_ctx_uses_the_app_session(oidc_issuer: OidcIssuer) -> None:
    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as s:
            app[SESSION] = s
            yield

    config = AuthConfig(audience=oidc_issuer.audience, issuer=oidc_issuer.issuer)
    app = web.Application()
    app.cleanup_ctx.extend([session_ctx, authenticator_ctx(config, SESSION, AUTH)])
    runner = web.AppRunner(app)
    await runner.setup()  # runs the cleanup contexts' startup halves
    try:
        assert oidc_issuer.jwks_fetches == 1  # warmed at startup
        principal = await app[AUTH].authenticate(bearer(oidc_issuer.mint("x")))
        assert principal.subject == "x" and oidc_issuer.jwks_fetches == 1
    finally:
        await runner.cleanup()
