"""JWS compact token checks: header parsing, algorithm policy, signature verification (joserfc)."""

from __future__ import annotations

import base64
import binascii
import warnings
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import Key

from shared.auth.errors import INVALID_TOKEN, AuthError
from shared.jsonutil import loads

DEFAULT_ALGORITHMS = ("RS256", "ES256", "PS256", "EdDSA")
# Which key type each accepted algorithm needs; HS* and `none` are absent on purpose.
ALG_KTY = {
    "RS256": "RSA",
    "RS384": "RSA",
    "RS512": "RSA",
    "PS256": "RSA",
    "PS384": "RSA",
    "PS512": "RSA",
    "ES256": "EC",
    "ES384": "EC",
    "ES512": "EC",
    "EdDSA": "OKP",
    "Ed25519": "OKP",
}
MAX_TOKEN_LENGTH = 16_384


def check_algorithms(algorithms: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Validate a configured algorithm list: asymmetric ones only, never `none` or HS*."""
    if not algorithms:
        raise ValueError("at least one algorithm is required")
    bad = [a for a in algorithms if a not in ALG_KTY]
    if bad:
        raise ValueError(f"unsupported or unsafe JWT algorithms: {', '.join(bad)}")
    return tuple(algorithms)


def _b64json(segment: str) -> Any:
    padded = segment + "=" * (-len(segment) % 4)
    return loads(base64.urlsafe_b64decode(padded.encode("ascii")))


def read_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, or AuthError when the token is not one."""
    parts = token.split(".")
    if len(token) > MAX_TOKEN_LENGTH or len(parts) != 3 or not all(parts):
        raise AuthError(INVALID_TOKEN, "malformed token")
    try:
        header = _b64json(parts[0])
    except (ValueError, binascii.Error, UnicodeError):
        raise AuthError(INVALID_TOKEN, "malformed token") from None
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        raise AuthError(INVALID_TOKEN, "malformed token")
    if "crit" in header:
        # We understand no critical extensions, so RFC 7515 4.1.11 says reject.
        raise AuthError(INVALID_TOKEN, "unsupported token header")
    return header


def check_alg(header: dict[str, Any], accepted: tuple[str, ...]) -> str:
    """The header's algorithm if accepted; otherwise AuthError."""
    alg = header["alg"]
    if alg not in accepted:
        raise AuthError(INVALID_TOKEN, "token algorithm not accepted")
    return alg


def verify(token: str, key: Key, alg: str) -> dict[str, Any]:
    """Verify the signature with `key` under exactly `alg`; return the claims object."""
    if key.key_type != ALG_KTY[alg]:
        raise AuthError(INVALID_TOKEN, "token algorithm does not match the signing key")
    declared = key.get("alg")
    if declared and declared != alg:
        raise AuthError(INVALID_TOKEN, "token algorithm does not match the signing key")
    try:
        with warnings.catch_warnings():
            # joserfc flags "EdDSA" as deprecated by RFC 9864; accepting it is our documented choice.
            warnings.simplefilter("ignore", SecurityWarning)
            obj = jws.deserialize_compact(token, key, algorithms=[alg])
    except JoseError:
        raise AuthError(INVALID_TOKEN, "token signature invalid") from None
    except (ValueError, TypeError):
        raise AuthError(INVALID_TOKEN, "malformed token") from None
    try:
        claims = loads(obj.payload or b"")
    except ValueError:
        raise AuthError(INVALID_TOKEN, "malformed token") from None
    if not isinstance(claims, dict):
        raise AuthError(INVALID_TOKEN, "malformed token")
    return claims
