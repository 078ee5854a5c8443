"""The policy console: server-rendered pages for the security team, signed in through OIDC.

`setup_console(app)` adds the routes, the Jinja environment (autoescape on), the static files and
the OIDC client's cleanup context. Layout: auth (session, roles, CSRF), oidc (the relying party),
sessions/drafts (Postgres), analysis/replay (pure logic), views* (thin handlers), templates/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from pdp.keys import SESSION, SETTINGS
from pdp.ui import auth, views, views_audit, views_block, views_drafts
from pdp.ui.keys import OIDC
from pdp.ui.oidc import OidcClient

HERE = Path(__file__).parent


async def oidc_ctx(app: web.Application) -> AsyncIterator[None]:
    """The console's OIDC client on the app's ClientSession (after session_ctx)."""
    settings = app[SETTINGS]
    assert settings.console_oidc_issuer and settings.console_client_id and settings.console_public_url
    app[OIDC] = OidcClient(
        app[SESSION], issuer=settings.console_oidc_issuer, client_id=settings.console_client_id,
        client_secret=settings.console_client_secret.get() if settings.console_client_secret else None,
        redirect_uri=settings.console_public_url.rstrip("/") + "/console/callback",
        scopes=settings.console_scopes, roles_claims=settings.console_roles_claims)
    yield


def setup_console(app: web.Application) -> None:
    """Register the console (call after the ClientSession's cleanup context is appended)."""
    env = aiohttp_jinja2.setup(app, loader=jinja2.FileSystemLoader(HERE / "templates"),
                               autoescape=jinja2.select_autoescape(default=True), undefined=jinja2.StrictUndefined)
    env.policies["json.dumps_kwargs"] = {"sort_keys": True}
    app.cleanup_ctx.append(oidc_ctx)
    r = app.router
    r.add_static("/console/static", HERE / "static")
    r.add_get("/console/login", auth.login)
    r.add_get("/console/callback", auth.callback)
    r.add_post("/console/logout", auth.logout)
    r.add_get("/console/signed-out", auth.signed_out)
    r.add_get("/console/", views.overview)
    r.add_get("/console", _to_console)
    r.add_get("/console/policy", views.policy)
    r.add_get("/console/history", views.history)
    r.add_get("/console/history/diff", views.version_diff)
    r.add_post("/console/history/{version}/rollback", views.rollback)
    r.add_get("/console/drafts", views_drafts.listing)
    r.add_post("/console/drafts", views_drafts.create)
    r.add_get("/console/drafts/{draft}", views_drafts.show)
    r.add_post("/console/drafts/{draft}", views_drafts.edit)
    r.add_post("/console/drafts/{draft}/review", views_drafts.review)
    r.add_get("/console/drafts/{draft}/diff", views_drafts.diff)
    r.add_get("/console/whatif", views_drafts.whatif)
    r.add_get("/console/impact", views_audit.impact)
    r.add_get("/console/decisions", views_audit.decisions)
    r.add_get("/console/decisions/export", views_audit.export)
    r.add_get("/console/decisions/{decision_id}", views_audit.decision)
    r.add_get("/console/block", views_block.form)
    r.add_post("/console/block", views_block.block)
    r.add_get("/console/least-privilege", views_block.least_privilege)
    r.add_post("/console/least-privilege", views_block.least_privilege_draft)


async def _to_console(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/console/")
