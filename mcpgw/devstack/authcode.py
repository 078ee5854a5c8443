"""Authorization code + PKCE for the dev issuer: pure checks, the code store and the login page."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from mcpgw.devstack.users import CLIENTS, USERS

CODE_TTL = 60.0
# RFC 7636 §4.1: 43-128 characters of [A-Z a-z 0-9 - . _ ~].
VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


class AuthError(Exception):
    """An OAuth error: `error` is the RFC 6749 code, the message says what was wrong."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def s256(verifier: str) -> str:
    """The S256 code challenge of a verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def loopback_redirect(uri: str) -> bool:
    """Dev clients may redirect to any http(s) URL on loopback, nowhere else."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1") \
        and not parts.fragment


@dataclass(frozen=True)
class AuthRequest:
    """A checked /auth request."""

    client_id: str
    redirect_uri: str
    state: str
    nonce: str
    challenge: str
    scope: str


def check_auth_request(q: dict[str, str]) -> AuthRequest:
    """Validate /auth parameters; PKCE with S256 is required of every client."""
    client_id = q.get("client_id", "")
    client = CLIENTS.get(client_id)
    if client is None or "authorization_code" not in client.grants:
        raise AuthError("unauthorized_client", f"unknown client_id {client_id!r} (known: {', '.join(CLIENTS)})")
    redirect = q.get("redirect_uri", "")
    if not loopback_redirect(redirect):
        raise AuthError("invalid_request", "redirect_uri must be an http(s) URL on 127.0.0.1 or localhost")
    if q.get("response_type") != "code":
        raise AuthError("unsupported_response_type", "response_type must be 'code'")
    if q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
        raise AuthError("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
    return AuthRequest(client_id, redirect, q.get("state", ""), q.get("nonce", ""), q["code_challenge"],
                       q.get("scope", "openid"))


@dataclass(frozen=True)
class Grant:
    """What a code stands for until it is redeemed (once)."""

    request: AuthRequest
    user: str
    expires: float


class CodeStore:
    """One-time codes in memory; a code is gone after its first redemption, good or bad."""

    def __init__(self) -> None:
        self._codes: dict[str, Grant] = {}

    def issue(self, request: AuthRequest, user: str) -> str:
        """A fresh code for `user`."""
        now = time.monotonic()
        self._codes = {c: g for c, g in self._codes.items() if g.expires > now}
        code = secrets.token_urlsafe(24)
        self._codes[code] = Grant(request, user, now + CODE_TTL)
        return code

    def redeem(self, code: str, client_id: str, redirect_uri: str, verifier: str) -> Grant:
        """The grant for a code, checking client, redirect URI and the PKCE verifier."""
        grant = self._codes.pop(code, None)
        if grant is None or grant.expires <= time.monotonic():
            raise AuthError("invalid_grant", "unknown, used or expired authorization code")
        if grant.request.client_id != client_id or grant.request.redirect_uri != redirect_uri:
            raise AuthError("invalid_grant", "client_id or redirect_uri differ from the authorization request")
        if not VERIFIER.fullmatch(verifier) or not hmac.compare_digest(s256(verifier), grant.request.challenge):
            raise AuthError("invalid_grant", "code_verifier does not match the code_challenge (PKCE)")
        return grant


def redirect_with(uri: str, params: dict[str, str]) -> str:
    """`uri` with query parameters appended."""
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


def login_page(action: str, request: AuthRequest) -> str:
    """A plain form: one button per dev user; the request travels in hidden fields."""
    e = html.escape
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">'
        for k, v in (("client_id", request.client_id), ("redirect_uri", request.redirect_uri),
                     ("state", request.state), ("nonce", request.nonce), ("scope", request.scope),
                     ("code_challenge", request.challenge), ("code_challenge_method", "S256"),
                     ("response_type", "code"))
    )
    buttons = "".join(
        f'<li><button type="submit" name="user" value="{e(u.name)}">{e(u.name)}</button> '
        f'{e(", ".join(u.roles))} &mdash; {e(u.about)}</li>'
        for u in USERS.values()
    )
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>mcpgw dev sign-in</title>"
        "</head><body><h1>mcpgw development sign-in</h1>"
        f"<p>Signing in to <strong>{e(request.client_id)}</strong>. Choose a development user "
        "(no password: this issuer serves loopback only).</p>"
        f'<form method="post" action="{e(action)}">{hidden}<ul>{buttons}</ul></form></body></html>'
    )
