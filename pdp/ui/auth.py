"""Sign-in, sign-out and the per-request checks every console view makes (session, role, CSRF).

Roles: any of viewer/editor/approver may read; `edit` needs the editor role; `approve` the
approver role. A state-changing request must carry the session's CSRF token in its form and, when
the browser sends an Origin header, come from the console's own origin.
"""

from __future__ import annotations

import hmac
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from aiohttp import web
from multidict import MultiDictProxy

from pdp.keys import SETTINGS
from pdp.ui import sessions
from pdp.ui.keys import OIDC
from pdp.ui.levels import level_roles, may
from pdp.ui.oidc import OidcError
from pdp.ui.render import page
from pdp.ui.sessions import Session
from shared.audit import AuditEvent
from shared.keys import AUDIT, DB_POOL

log = logging.getLogger(__name__)
SESSION_COOKIE = "mcpgw_console"
LOGIN_COOKIE = "mcpgw_console_login"
PATH = "/console"
__all__ = ["level_roles", "may"]  # re-exported: views import them from here


def safe_next(path: str | None) -> str:
    """Only a local console path may be a post-sign-in target (no open redirect)."""
    if not path or not path.startswith(PATH + "/") or path.startswith("//") or "\\" in path:
        return PATH + "/"
    return path


def _cookie_args(request: web.Request) -> dict[str, Any]:
    secure = (request.app[SETTINGS].console_public_url or "").startswith("https://")
    return {"path": PATH, "httponly": True, "samesite": "Lax", "secure": secure}


async def current(request: web.Request) -> Session | None:
    """The request's live session (its idle clock restarted), or None."""
    raw = request.cookies.get(SESSION_COOKIE)
    if not raw:
        return None
    return await sessions.touch(request.app[DB_POOL], raw, request.app[SETTINGS].console_idle_timeout)


async def need(request: web.Request, level: str = "view") -> Session:
    """The signed-in user holding `level`; otherwise sign-in redirect (GET), 401 or 403."""
    who = await current(request)
    if who is None:
        if request.method == "GET":
            raise web.HTTPFound(f"{PATH}/login?{urlencode({'next': request.path_qs})}")
        raise web.HTTPUnauthorized(text="sign in first")
    if not may(request.app[SETTINGS], who, level):
        roles = ", ".join(sorted(level_roles(request.app[SETTINGS], level)))
        raise web.HTTPForbidden(text=f"this needs one of the roles: {roles}")
    return who


async def need_post(request: web.Request, level: str) -> tuple[Session, MultiDictProxy[Any]]:
    """`need` plus a CSRF check; returns the session and the submitted form."""
    who = await need(request, level)
    origin = request.headers.get("Origin")
    public = request.app[SETTINGS].console_public_url or ""
    if origin is not None and origin != _origin(public):
        raise web.HTTPForbidden(text="cross-origin form refused")
    form = await request.post()
    token = form.get("csrf")
    if not isinstance(token, str) or not hmac.compare_digest(token.encode(), who.csrf.encode()):
        raise web.HTTPForbidden(text="missing or wrong CSRF token: reload the page and try again")
    return who, form


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def login(request: web.Request) -> web.Response:
    """GET /console/login: start the authorization code + PKCE flow."""
    try:
        raw, started = await sessions.start_login(request.app[DB_POOL], safe_next(request.query.get("next")))
        url = await request.app[OIDC].start(started.state, started.nonce, started.verifier)
    except sessions.TooManyLogins:
        return page(request, "error.html", {"title": "Sign-in unavailable",
                                            "message": "too many sign-ins in progress; try again in a few minutes"},
                    status=503)
    except OidcError as exc:
        return page(request, "error.html", {"title": "Sign-in unavailable", "message": str(exc)}, status=503)
    resp = web.HTTPFound(url)
    resp.set_cookie(LOGIN_COOKIE, raw, max_age=int(sessions.LOGIN_TTL), **_cookie_args(request))
    raise resp


async def callback(request: web.Request) -> web.Response:
    """GET /console/callback: check state, exchange the code, validate the ID token, open a session."""
    pool = request.app[DB_POOL]
    raw = request.cookies.get(LOGIN_COOKIE)
    started = await sessions.take_login(pool, raw) if raw else None
    state = request.query.get("state", "")
    if started is None or not hmac.compare_digest(state.encode(), started.state.encode()):
        return page(request, "error.html", {"title": "Sign-in failed",
                                            "message": "this sign-in was not started here or has expired"}, status=400)
    if "error" in request.query or "code" not in request.query:
        return page(request, "error.html", {"title": "Sign-in failed",
                                            "message": request.query.get("error_description")
                                            or request.query.get("error", "no code returned")}, status=400)
    try:
        who = await request.app[OIDC].finish(request.query["code"], started.verifier, started.nonce)
    except OidcError as exc:
        log.warning("console sign-in refused: %s", exc)
        return page(request, "error.html", {"title": "Sign-in failed", "message": str(exc)}, status=401)
    raw_session = await sessions.create(pool, who, request.app[SETTINGS].console_idle_timeout)
    _audit(request, who.subject, list(who.roles), "console_login", {})
    resp = web.HTTPFound(started.next_path)
    resp.del_cookie(LOGIN_COOKIE, path=PATH)
    resp.set_cookie(SESSION_COOKIE, raw_session, **_cookie_args(request))
    raise resp


async def logout(request: web.Request) -> web.Response:
    """POST /console/logout: end the session here (the provider's own session is not ended)."""
    who, _ = await need_post(request, "view")
    await sessions.end(request.app[DB_POOL], request.cookies[SESSION_COOKIE])
    _audit(request, who.subject, list(who.roles), "console_logout", {})
    resp = web.HTTPFound(f"{PATH}/signed-out")
    resp.del_cookie(SESSION_COOKIE, path=PATH)
    raise resp


async def signed_out(request: web.Request) -> web.Response:
    """GET /console/signed-out: with a link that also ends the session at the provider."""
    after = (request.app[SETTINGS].console_public_url or "").rstrip("/") + f"{PATH}/signed-out"
    provider = None if "provider" in request.query else await request.app[OIDC].end_session_url(after + "?provider=1")
    return page(request, "signed_out.html", {"title": "Signed out", "provider_logout": provider,
                                             "provider_done": "provider" in request.query})


def _audit(request: web.Request, subject: str, roles: list[str], action: str, extra: dict[str, Any]) -> None:
    audit = request.app.get(AUDIT)
    if audit is not None:
        audit.emit(AuditEvent(event_type="console", service="pdp", subject=subject, roles=roles, action=action,
                              status="success", client_addr=request.remote, extra=extra))


def audit_change(request: web.Request, who: Session, action: str, **extra: Any) -> None:
    """Audit one console change (who, what, details such as a diff)."""
    _audit(request, who.subject, list(who.roles), action, extra)
