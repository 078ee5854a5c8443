"""Typed app keys shared by both services (each service's own keys live in its keys.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

if TYPE_CHECKING:
    from shared.audit.emitter import (
        AuditEmitter,  # the emitter module, not the package that imports us
    )
    from shared.tracing import Tracer

DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REGISTRY = web.AppKey("metrics_registry", CollectorRegistry)
AUDIT: web.AppKey[AuditEmitter] = web.AppKey("audit")
TRACING: web.AppKey[Tracer] = web.AppKey("tracing")
