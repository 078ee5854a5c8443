"""Authentication errors and the RFC 6750 `WWW-Authenticate` header.

    AuthError (error code, safe description, HTTP status)
      error = invalid_request     -> 400/401: no or malformed Authorization header
      error = invalid_token       -> 401: bad signature, expired, wrong issuer/audience, unknown key
                                  -> 503: signing keys could not be fetched (not the client's fault)
      error = insufficient_scope  -> 403: valid token without a required scope

Descriptions are written for the client: they never echo the token or an internal exception.
"""

from __future__ import annotations

INVALID_REQUEST = "invalid_request"
INVALID_TOKEN = "invalid_token"
INSUFFICIENT_SCOPE = "insufficient_scope"
ERROR_CODES = (INVALID_REQUEST, INVALID_TOKEN, INSUFFICIENT_SCOPE)
MISSING_CREDENTIALS = "missing bearer token"


class AuthError(Exception):
    """Authentication failed; `error` is an RFC 6750 code, `description` is safe to show."""

    def __init__(self, error: str, description: str, status: int = 401) -> None:
        if error not in ERROR_CODES:
            raise ValueError(f"not an RFC 6750 error code: {error}")
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


def _quote(value: str) -> str:
    # RFC 7235 quoted-string: escape backslash and quote, drop control characters.
    cleaned = "".join(ch for ch in value if ch >= " " and ch != "\x7f")
    return cleaned.replace("\\", "\\\\").replace('"', '\\"')


def www_authenticate(
    err: AuthError | None = None,
    resource_metadata_url: str | None = None,
    *,
    realm: str | None = None,
) -> str:
    """The `WWW-Authenticate: Bearer ...` value for a failed (or missing) authentication."""
    params: list[str] = []
    if realm:
        params.append(f'realm="{_quote(realm)}"')
    if resource_metadata_url:
        params.append(f'resource_metadata="{_quote(resource_metadata_url)}"')
    # RFC 6750 3.1: a request without credentials gets no error code, just the challenge.
    if err is not None and not (
        err.error == INVALID_REQUEST and err.description == MISSING_CREDENTIALS
    ):
        params.append(f'error="{err.error}"')
        params.append(f'error_description="{_quote(err.description)}"')
    return "Bearer" + (" " + ", ".join(params) if params else "")
