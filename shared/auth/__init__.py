"""JWT authentication shared by the gateway and the PDP admin API.

Modules: errors (AuthError, www_authenticate), principal (Principal, dev_principal), claims
(pure claim checks and mapping), jwt (header, algorithm policy, signature), jwks (discovery and
key cache), authenticator (Authenticator, AuthConfig). See docs/auth.md.
"""

from shared.auth.authenticator import (
    AuthConfig,
    Authenticator,
    authenticator_ctx,
    authorization_header,
    bearer_token,
    token_digest,
)
from shared.auth.claims import ClaimMapping, check_registered_claims, to_principal
from shared.auth.errors import (
    INSUFFICIENT_SCOPE,
    INVALID_REQUEST,
    INVALID_TOKEN,
    AuthError,
    www_authenticate,
)
from shared.auth.jwks import JwksCache, JwksUnavailable
from shared.auth.jwt import DEFAULT_ALGORITHMS
from shared.auth.principal import DEV_SUBJECT, Principal, dev_principal

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEV_SUBJECT",
    "INSUFFICIENT_SCOPE",
    "INVALID_REQUEST",
    "INVALID_TOKEN",
    "AuthConfig",
    "AuthError",
    "Authenticator",
    "ClaimMapping",
    "JwksCache",
    "JwksUnavailable",
    "Principal",
    "authenticator_ctx",
    "authorization_header",
    "bearer_token",
    "check_registered_claims",
    "dev_principal",
    "to_principal",
    "token_digest",
    "www_authenticate",
]
