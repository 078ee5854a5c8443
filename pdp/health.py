"""/healthz (process up) and /readyz (policy loaded, database reachable when configured)."""

from __future__ import annotations

from aiohttp import web

from pdp.keys import SETTINGS, SHADOW, STATE
from shared.jsonutil import json_response
from shared.keys import DB_POOL
from shared.metrics import metrics_handler


async def healthz(_request: web.Request) -> web.Response:
    """Liveness."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Readiness: 503 until a policy is loaded and the database answers."""
    active = request.app[STATE].current
    problems = []
    if active is None:
        problems.append("no policy loaded")
    shadow = request.app.get(SHADOW)
    if request.app[SETTINGS].shadow_fail_readiness and shadow is not None and shadow.disagreements:
        problems.append(f"fast path and Casbin disagreed on {shadow.disagreements} sampled decision(s)")
    pool = request.app.get(DB_POOL)
    if pool is not None:
        try:
            await pool.fetchval("SELECT 1", timeout=2)
        except Exception as exc:  # any failure means not ready
            problems.append(f"database unreachable: {type(exc).__name__}")
    body = {"status": "ready" if not problems else "not_ready", "problems": problems,
            "policy_version": active.version if active else None}
    return json_response(body, status=200 if not problems else 503)


def setup_routes(app: web.Application) -> None:
    """Register health and metrics routes."""
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_handler)
