"""Typed app keys of the PDP (shared ones: shared.keys)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from pdp.settings import PdpSettings

if TYPE_CHECKING:
    pass

SETTINGS = web.AppKey("pdp_settings", PdpSettings)
STATE = web.AppKey("pdp_policy_state", "PolicyState")
METRICS = web.AppKey("pdp_metrics", "PdpMetrics")
SESSION = web.AppKey("pdp_http_session", aiohttp.ClientSession)
ADMIN_AUTH = web.AppKey("pdp_admin_authenticator", "Authenticator")
DSN = web.AppKey("pdp_dsn", str)
