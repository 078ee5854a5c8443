"""AuthError, WWW-Authenticate, bearer header parsing, algorithm policy, token digests."""

from __future__ import annotations

import pytest

from shared.auth import (
    AuthConfig,
    AuthError,
    bearer_token,
    dev_principal,
    token_digest,
    www_authenticate,
)
from shared.auth.jwt import check_algorithms, read_header


@pytest.mark.parametrize(
    ("err", "metadata", "expected"),
    [
        (None, None, "Bearer"),
        (
            AuthError("invalid_request", "missing bearer token"),
            "https://gw/.well-known/oauth-protected-resource",
            'Bearer resource_metadata="https://gw/.well-known/oauth-protected-resource"',
        ),
        (
            AuthError("invalid_token", "token expired"),
            None,
            'Bearer error="invalid_token", error_description="token expired"',
        ),
        (
            AuthError("insufficient_scope", 'needs "x"', status=403),
            "https://m",
            'Bearer resource_metadata="https://m", error="insufficient_scope", error_description="needs \\"x\\""',
        ),
        (
            AuthError("invalid_request", "bad\r\nInjected: 1"),
            None,
            'Bearer error="invalid_request", error_description="badInjected: 1"',
        ),
    ],
)
def test_www_authenticate(err: AuthError | None, metadata: str | None, expected: str) -> None:
    assert www_authenticate(err, metadata) == expected


def test_auth_error_rejects_unknown_codes() -> None:
    with pytest.raises(ValueError):
        AuthError("server_error", "x")


@pytest.mark.parametrize(
    ("header", "token", "problem"),
    [
        ("Bearer abc.def.ghi", "abc.def.ghi", None),
        ("bearer   abc.def.ghi  ", "abc.def.ghi", None),
        (None, None, "missing bearer token"),
        ("", None, "missing bearer token"),
        ("   ", None, "missing bearer token"),
        ("Basic dXNlcjpwYXNz", None, "Authorization header must be 'Bearer <token>'"),
        ("Bearer", None, "Authorization header must be 'Bearer <token>'"),
        ("Bearer a b", None, "Authorization header must be 'Bearer <token>'"),
        ("abc.def.ghi", None, "Authorization header must be 'Bearer <token>'"),
    ],
)
def test_bearer_token(header: str | None, token: str | None, problem: str | None) -> None:
    if problem is None:
        assert bearer_token(header) == token
        return
    with pytest.raises(AuthError) as info:
        bearer_token(header)
    assert (info.value.error, info.value.description, info.value.status) == (
        "invalid_request",
        problem,
        401,
    )


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d.e",
        "..",
        "!!!.e30.sig",
        "e30.e30.sig",  # header without alg
        "W10.e30.sig",  # header is a list
        "eyJhbGciOiJSUzI1NiIsImNyaXQiOlsiZXhwIl19.e30.sig",  # crit we do not understand
        "x" * 20000 + ".e30.sig",
    ],
)
def test_read_header_rejects_malformed(token: str) -> None:
    with pytest.raises(AuthError) as info:
        read_header(token)
    assert info.value.error == "invalid_token"
    assert token not in info.value.description


@pytest.mark.parametrize(
    ("algorithms", "ok"),
    [
        (("RS256", "ES256", "PS256", "EdDSA"), True),
        (("ES384",), True),
        (("none",), False),
        (("RS256", "HS256"), False),
        ((), False),
    ],
)
def test_check_algorithms(algorithms: tuple[str, ...], ok: bool) -> None:
    if ok:
        assert check_algorithms(algorithms) == algorithms
    else:
        with pytest.raises(ValueError):
            check_algorithms(algorithms)


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"audience": "gw", "issuer": "https://idp"}, None),
        ({"audience": "gw", "jwks_url": "https://idp/certs"}, None),
        ({"audience": "", "issuer": "https://idp"}, "audience is required"),
        ({"audience": "gw"}, "issuer or jwks_url is required"),
        (
            {"audience": "gw", "issuer": "https://idp", "algorithms": ("HS256",)},
            "unsafe JWT algorithms",
        ),
        ({"audience": "gw", "issuer": "https://idp", "leeway": -1}, "leeway"),
    ],
)
def test_auth_config_validation(kwargs: dict, problem: str | None) -> None:
    if problem is None:
        AuthConfig(**kwargs)
        return
    with pytest.raises(ValueError, match=problem):
        AuthConfig(**kwargs)


def test_token_digest_is_not_the_token() -> None:
    digest = token_digest("secret.token.value")
    assert len(digest) == 32 and b"secret" not in digest
    assert digest == token_digest("secret.token.value") != token_digest("secret.token.valuf")


def test_dev_principal_has_no_magic_roles() -> None:
    assert dev_principal().subject == "dev"
    assert dev_principal().roles == ()
    assert dev_principal(["admin"]).roles == ("admin",)
