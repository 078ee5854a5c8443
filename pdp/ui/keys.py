"""Typed app keys of the console."""

from __future__ import annotations

from aiohttp import web

from pdp.ui.oidc import OidcClient

OIDC = web.AppKey("pdp_console_oidc", OidcClient)
