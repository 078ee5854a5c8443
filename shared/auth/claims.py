"""Pure functions: registered-claim checks (exp, nbf, iat, iss, aud) and claim mapping.

Claim paths are dot-separated (`realm_access.roles`); the segment `{client_id}` is replaced by
the configured client id after splitting, so client ids containing dots still work.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.auth.errors import INVALID_TOKEN, AuthError
from shared.auth.principal import Principal

CLIENT_ID = "{client_id}"
# Keycloak marks its other JWTs in the `typ` claim; an ID token shares the access token's audience
# when the client is its own resource, so it must be refused explicitly.
NOT_ACCESS_TOKENS = frozenset({"ID", "Refresh", "Logout"})


@dataclass(frozen=True)
class ClaimMapping:
    """Where subject, roles, groups and scopes live in the token; defaults fit a Keycloak realm."""

    subject: tuple[str, ...] = ("sub", "preferred_username", "email")
    roles: tuple[str, ...] = ("realm_access.roles", "resource_access.{client_id}.roles")
    groups: tuple[str, ...] = ("groups",)
    scopes: tuple[str, ...] = ("scope", "scp")
    client_id: str | None = None


def resolve_path(claims: Mapping[str, Any], path: str, client_id: str | None = None) -> Any:
    """The value at a dot path, or None when any segment is missing (or `{client_id}` is unset)."""
    node: Any = claims
    for segment in path.split("."):
        if segment == CLIENT_ID:
            if client_id is None:
                return None
            segment = client_id
        if not isinstance(node, Mapping) or segment not in node:
            return None
        node = node[segment]
    return node


def _strings(value: Any, *, split: bool = False) -> list[str]:
    # Non-string members are dropped: a malformed claim can only lose privileges, never add them.
    if isinstance(value, str):
        return value.split() if split else ([value] if value else [])
    if isinstance(value, list | tuple):
        items = [v for v in value if isinstance(v, str) and v]
        return [part for item in items for part in item.split()] if split else items
    return []


def _collect(
    claims: Mapping[str, Any], paths: Iterable[str], client_id: str | None, split: bool
) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for path in paths:
        for item in _strings(resolve_path(claims, path, client_id), split=split):
            seen.setdefault(item, None)
    return tuple(seen)


def map_subject(claims: Mapping[str, Any], mapping: ClaimMapping) -> str | None:
    """The first non-empty string among the subject paths, in order."""
    for path in mapping.subject:
        value = resolve_path(claims, path, mapping.client_id)
        if isinstance(value, str) and value:
            return value
    return None


def map_roles(claims: Mapping[str, Any], mapping: ClaimMapping) -> tuple[str, ...]:
    """Roles from every role path, deduplicated in order."""
    return _collect(claims, mapping.roles, mapping.client_id, split=False)


def map_groups(claims: Mapping[str, Any], mapping: ClaimMapping) -> tuple[str, ...]:
    """Groups from every group path, deduplicated in order."""
    return _collect(claims, mapping.groups, mapping.client_id, split=False)


def map_scopes(claims: Mapping[str, Any], mapping: ClaimMapping) -> tuple[str, ...]:
    """Scopes from `scope` (space separated) or `scp` (list or string)."""
    return _collect(claims, mapping.scopes, mapping.client_id, split=True)


def to_principal(claims: Mapping[str, Any], mapping: ClaimMapping) -> Principal:
    """Build a Principal from validated claims; a token without a usable subject is rejected."""
    subject = map_subject(claims, mapping)
    if subject is None:
        raise AuthError(INVALID_TOKEN, "token has no subject")
    return Principal(
        subject=subject,
        roles=map_roles(claims, mapping),
        groups=map_groups(claims, mapping),
        scopes=map_scopes(claims, mapping),
        claims=dict(claims),
        expires_at=float(claims["exp"]),
    )


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise AuthError(INVALID_TOKEN, f"token claim '{name}' is not a number")
    return float(value)


def check_registered_claims(
    claims: Mapping[str, Any], *, issuer: str | None, audience: str, now: float, leeway: float
) -> None:
    """Check exp (required), nbf, iat, iss and aud; raise AuthError(invalid_token) on the first problem."""
    exp = _number(claims, "exp")
    if exp is None:
        raise AuthError(INVALID_TOKEN, "token has no expiry")
    if now > exp + leeway:
        raise AuthError(INVALID_TOKEN, "token expired")
    nbf = _number(claims, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise AuthError(INVALID_TOKEN, "token not yet valid")
    iat = _number(claims, "iat")
    if iat is not None and now + leeway < iat:
        raise AuthError(INVALID_TOKEN, "token issued in the future")
    if claims.get("typ") in NOT_ACCESS_TOKENS:
        raise AuthError(INVALID_TOKEN, "token is not an access token")
    if issuer is not None and claims.get("iss") != issuer:
        raise AuthError(INVALID_TOKEN, "token issuer not accepted")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if audience not in audiences:
        raise AuthError(INVALID_TOKEN, "token audience not accepted")
