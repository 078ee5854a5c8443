"""Audit trail shared by both services: `AuditEvent`, `AuditEmitter` and the `audit_ctx` factory.

Modules: event (schema, JSON and row forms), emitter (queue, writer, replayer), pgwrite (COPY
paths), spool (fsync'd outage buffer), sinks (JSONL file, stdout), metrics. See docs/audit.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared.audit.emitter import AuditEmitter, redact_event
from shared.audit.event import COLUMNS, AuditEvent
from shared.common_settings import CommonSettings
from shared.keys import AUDIT, DB_POOL, REGISTRY

__all__ = ["COLUMNS", "AuditEmitter", "AuditEvent", "audit_ctx", "emitter_from_settings", "redact_event"]


def spool_dir(settings: CommonSettings) -> Path:
    """Where this deployment spools audit events during a database outage."""
    return settings.audit_spool_dir or settings.data_dir / "audit-spool"


def emitter_from_settings(
    settings: CommonSettings,
    service: str,
    *,
    pool_getter: Callable[[], asyncpg.Pool | None] | None = None,
    registry: CollectorRegistry | None = None,
) -> AuditEmitter:
    """An emitter wired to the sinks the settings enable (start it with `await start()`)."""
    postgres = settings.audit_postgres and pool_getter is not None
    return AuditEmitter(
        service,
        pool_getter=pool_getter if postgres else None,
        spool_dir=spool_dir(settings) if postgres else None,
        file=settings.audit_file,
        stdout=settings.audit_stdout,
        redact_keys=settings.audit_redact_keys,
        queue_size=settings.audit_queue_size,
        batch_size=settings.audit_batch_size,
        flush_interval=settings.audit_flush_interval,
        registry=registry,
    )


def audit_ctx(
    settings: CommonSettings,
    service: str,
    pool_getter: Callable[[web.Application], asyncpg.Pool | None] | None = None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context storing a started emitter under `shared.keys.AUDIT`; flushes on exit.

    Register it after the database pool's context so the pool outlives the final flush. The pool
    is looked up per batch (default: `app[DB_POOL]`), so a pool opened later is picked up too.
    """
    get_pool = pool_getter or (lambda app: app.get(DB_POOL))

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if REGISTRY not in app:
            app[REGISTRY] = CollectorRegistry()
        emitter = emitter_from_settings(
            settings, service, pool_getter=lambda: get_pool(app), registry=app[REGISTRY]
        )
        await emitter.start()
        app[AUDIT] = emitter
        try:
            yield
        finally:
            await emitter.close()

    return ctx
