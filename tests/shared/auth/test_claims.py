"""Claim mapping and registered-claim checks: pure, table-driven."""

from __future__ import annotations

import pytest

from shared.auth import AuthError, ClaimMapping, check_registered_claims, to_principal
from shared.auth.claims import map_groups, map_roles, map_scopes, map_subject, resolve_path

KC = ClaimMapping(client_id="mcpgw-gateway")

# A token shaped like a real Keycloak 26 access token (fields trimmed, values realistic).
KEYCLOAK_TOKEN = {
    "exp": 2_000_000_300,
    "iat": 2_000_000_000,
    "jti": "onrtac:3c1e3d3a-4f7b-4f47-9d0f-1b2c3d4e5f60",
    "iss": "http://keycloak.local:8080/realms/acme",
    "aud": ["mcpgw-gateway", "account"],
    "sub": "6f1c2a4e-8d9b-4c1e-9a3f-2b7d5e8c0a11",
    "typ": "Bearer",
    "azp": "mcpgw-gateway",
    "sid": "a8c3e1f2-0000-4000-8000-000000000001",
    "acr": "1",
    "allowed-origins": ["http://localhost:3000"],
    "realm_access": {
        "roles": ["offline_access", "uma_authorization", "default-roles-acme", "analyst"]
    },
    "resource_access": {
        "mcpgw-gateway": {"roles": ["tool-admin", "analyst"]},
        "account": {"roles": ["manage-account", "view-profile"]},
    },
    "scope": "openid profile email mcp:tools",
    "email_verified": True,
    "name": "Alice Liddell",
    "preferred_username": "alice",
    "given_name": "Alice",
    "family_name": "Liddell",
    "email": "alice@example.com",
    "groups": ["/engineering", "/engineering/platform"],
}


def test_keycloak_token_maps_to_principal() -> None:
    principal = to_principal(KEYCLOAK_TOKEN, KC)
    assert principal.subject == "6f1c2a4e-8d9b-4c1e-9a3f-2b7d5e8c0a11"
    assert principal.roles == (
        "offline_access",
        "uma_authorization",
        "default-roles-acme",
        "analyst",
        "tool-admin",
    )
    assert "manage-account" not in principal.roles  # another client's roles are not ours
    assert principal.groups == ("/engineering", "/engineering/platform")
    assert principal.scopes == ("openid", "profile", "email", "mcp:tools")
    assert principal.expires_at == 2_000_000_300
    assert principal.claims["azp"] == "mcpgw-gateway"


def test_keycloak_audience_list_is_accepted() -> None:
    check_registered_claims(
        KEYCLOAK_TOKEN,
        issuer="http://keycloak.local:8080/realms/acme",
        audience="mcpgw-gateway",
        now=2_000_000_100,
        leeway=0,
    )


@pytest.mark.parametrize(
    ("claims", "order", "expected"),
    [
        (
            {"sub": "s", "preferred_username": "u", "email": "e"},
            ("sub", "preferred_username", "email"),
            "s",
        ),
        ({"preferred_username": "u", "email": "e"}, ("sub", "preferred_username", "email"), "u"),
        ({"email": "e"}, ("sub", "preferred_username", "email"), "e"),
        ({"sub": "s", "preferred_username": "u"}, ("preferred_username", "sub"), "u"),
        ({"sub": "", "email": "e"}, ("sub", "email"), "e"),  # empty string is absent
        ({"sub": 42, "email": "e"}, ("sub", "email"), "e"),  # non-string is absent
        ({"user": {"name": "n"}}, ("user.name",), "n"),
        ({}, ("sub",), None),
    ],
)
def test_subject_order(claims: dict, order: tuple, expected: str | None) -> None:
    assert map_subject(claims, ClaimMapping(subject=order)) == expected


@pytest.mark.parametrize(
    ("claims", "mapping", "expected"),
    [
        ({"realm_access": {"roles": ["a", "b"]}}, ClaimMapping(), ("a", "b")),
        # resource_access is skipped without a client id
        ({"resource_access": {"c": {"roles": ["x"]}}}, ClaimMapping(), ()),
        ({"resource_access": {"c": {"roles": ["x"]}}}, ClaimMapping(client_id="c"), ("x",)),
        # client ids with dots are one segment
        ({"resource_access": {"a.b": {"roles": ["x"]}}}, ClaimMapping(client_id="a.b"), ("x",)),
        (
            {"realm_access": {"roles": ["a"]}, "resource_access": {"c": {"roles": ["a", "z"]}}},
            ClaimMapping(client_id="c"),
            ("a", "z"),
        ),
        ({"realm_access": {"roles": "admin"}}, ClaimMapping(), ("admin",)),
        ({"realm_access": {"roles": ["a", 1, None, {"x": 1}, ""]}}, ClaimMapping(), ("a",)),
        ({"realm_access": ["roles"]}, ClaimMapping(), ()),
        ({"roles": ["r"]}, ClaimMapping(roles=("roles",)), ("r",)),
    ],
)
def test_roles(claims: dict, mapping: ClaimMapping, expected: tuple) -> None:
    assert map_roles(claims, mapping) == expected


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"groups": ["/g1", "g2"]}, ("/g1", "g2")),
        ({"groups": "g"}, ("g",)),
        ({"groups": 5}, ()),
        ({}, ()),
    ],
)
def test_groups(claims: dict, expected: tuple) -> None:
    assert map_groups(claims, ClaimMapping()) == expected


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"scope": "openid  tools:read "}, ("openid", "tools:read")),
        ({"scp": ["a", "b"]}, ("a", "b")),
        ({"scp": "a b"}, ("a", "b")),
        ({"scope": "a b", "scp": ["b", "c"]}, ("a", "b", "c")),
        ({"scope": ""}, ()),
        ({"scope": ["x y"]}, ("x", "y")),
    ],
)
def test_scopes(claims: dict, expected: tuple) -> None:
    assert map_scopes(claims, ClaimMapping()) == expected


@pytest.mark.parametrize(
    ("path", "client_id", "expected"),
    [
        ("a.b", None, 1),
        ("a.c", None, None),
        ("a.b.c", None, None),  # descending into a non-object
        ("{client_id}.b", None, None),
        ("{client_id}.b", "a", 1),
    ],
)
def test_resolve_path(path: str, client_id: str | None, expected: object) -> None:
    assert resolve_path({"a": {"b": 1}}, path, client_id) == expected


def test_no_subject_is_rejected() -> None:
    with pytest.raises(AuthError) as info:
        to_principal({"exp": 1, "realm_access": {"roles": ["admin"]}}, ClaimMapping())
    assert info.value.error == "invalid_token"


NOW = 1_000_000.0
GOOD = {"iss": "https://idp/realms/r", "aud": "gw", "exp": NOW + 60, "iat": NOW - 1, "nbf": NOW - 1}


@pytest.mark.parametrize(
    ("changes", "leeway", "message"),
    [
        ({}, 0, None),
        ({"exp": NOW - 1}, 0, "token expired"),
        ({"exp": NOW - 1}, 5, None),  # within leeway
        ({"exp": NOW - 6}, 5, "token expired"),
        ({"exp": None}, 0, "token has no expiry"),
        ({"exp": "soon"}, 0, "token claim 'exp' is not a number"),
        ({"exp": True}, 0, "token claim 'exp' is not a number"),
        ({"nbf": NOW + 10}, 0, "token not yet valid"),
        ({"nbf": NOW + 10}, 10, None),
        ({"iat": NOW + 60}, 5, "token issued in the future"),
        ({"iss": "https://evil/realms/r"}, 0, "token issuer not accepted"),
        ({"iss": None}, 0, "token issuer not accepted"),
        ({"aud": "other"}, 0, "token audience not accepted"),
        ({"aud": ["other", "gw"]}, 0, None),
        ({"aud": ["other"]}, 0, "token audience not accepted"),
        ({"aud": None}, 0, "token audience not accepted"),
        ({"aud": {"gw": 1}}, 0, "token audience not accepted"),
        ({"typ": "Bearer"}, 0, None),
        ({"typ": "ID"}, 0, "token is not an access token"),
        ({"typ": "Refresh"}, 0, "token is not an access token"),
    ],
)
def test_registered_claims(changes: dict, leeway: float, message: str | None) -> None:
    claims = {k: v for k, v in {**GOOD, **changes}.items() if v is not None}
    if message is None:
        check_registered_claims(
            claims, issuer="https://idp/realms/r", audience="gw", now=NOW, leeway=leeway
        )
        return
    with pytest.raises(AuthError) as info:
        check_registered_claims(
            claims, issuer="https://idp/realms/r", audience="gw", now=NOW, leeway=leeway
        )
    assert (info.value.error, info.value.description, info.value.status) == (
        "invalid_token",
        message,
        401,
    )
