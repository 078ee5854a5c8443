"""Render a console page: the base layout's navigation, the user, their CSRF token."""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from pdp.keys import SETTINGS
from pdp.ui.levels import may

NAV = (
    ("Overview", "/console/"), ("Policy", "/console/policy"), ("Drafts", "/console/drafts"),
    ("What-if", "/console/whatif"), ("Impact", "/console/impact"), ("History", "/console/history"),
    ("Decisions", "/console/decisions"), ("Least privilege", "/console/least-privilege"),
    ("Emergency block", "/console/block"),
)


def page(request: web.Request, template: str, context: dict[str, Any], *, who: Any = None,
         status: int = 200) -> web.Response:
    """The rendered template inside the base layout."""
    settings = request.app[SETTINGS]
    ctx = {"nav": NAV, "path": request.path, "who": who, "csrf": who.csrf if who else "",
           "can_edit": bool(who and may(settings, who, "edit")),
           "can_approve": bool(who and may(settings, who, "approve")), **context}
    return aiohttp_jinja2.render_template(template, request, ctx, status=status)
