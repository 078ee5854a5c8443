"""Typed app keys of the PDP (shared ones: shared.keys)."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from pdp.metrics import PdpMetrics
from pdp.settings import PdpSettings
from pdp.shadow import Shadow
from pdp.state import PolicyState
from shared.auth import Authenticator, Principal

SETTINGS = web.AppKey("pdp_settings", PdpSettings)
STATE = web.AppKey("pdp_policy_state", PolicyState)
METRICS = web.AppKey("pdp_metrics", PdpMetrics)
SESSION = web.AppKey("pdp_http_session", aiohttp.ClientSession)
ADMIN_AUTH = web.AppKey("pdp_admin_authenticator", Authenticator)
DSN = web.AppKey("pdp_dsn", str)
SHADOW = web.AppKey("pdp_shadow", Shadow)
# The admin API caller, once authenticated (the access log names it).
ADMIN_PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("pdp_admin_principal")
