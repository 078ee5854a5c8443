"""The PDP aiohttp application: `create_app(settings)` wires contexts, middlewares and routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from pdp import admin, admin_ops, api, filesync, filewatch, health, store
from pdp.access import access_middleware
from pdp.keys import ADMIN_AUTH, ADMIN_PRINCIPAL, DSN, METRICS, SESSION, SETTINGS, SHADOW, STATE
from pdp.metrics import PdpMetrics
from pdp.policy import parse_policy
from pdp.settings import PdpSettings
from pdp.shadow import Shadow
from pdp.state import PolicyState, pair_sha256, sha256_text
from pdp.ui import setup_console
from pdp.ui.security import console_headers_middleware
from shared import db, tracing
from shared.access_log import access_writer
from shared.audit import AuditEvent, audit_ctx
from shared.auth import AuthConfig, authenticator_ctx
from shared.keys import AUDIT, DB_POOL, REGISTRY, TRACING
from shared.logging import request_id_middleware
from shared.metrics import HttpMetrics, http_recorder, service_registry, version
from shared.outcome import outcome_middleware
from shared.runtime import cancel_and_wait

log = logging.getLogger(__name__)


def create_app(settings: PdpSettings) -> web.Application:
    """Build the PDP app (nothing starts until the app runs its cleanup contexts)."""
    registry = service_registry("pdp")
    # Order: request id first (the gateway's id reaches logs and audit rows), the request's outcome
    # next (shared/outcome.py: span, metrics, access line) so refused calls are counted too; access check before handlers.
    # The console's security headers wrap its pages and errors alike.
    traced = tracing.setup("pdp", settings, registry, version())  # None: off
    outcome = outcome_middleware(http_recorder(HttpMetrics(registry, "mcpgw_pdp")),
                                 access_writer(settings.log_access, _caller), tracer=traced.tracer if traced else None)
    app = web.Application(middlewares=[request_id_middleware(), outcome,
                                       console_headers_middleware(), access_middleware(settings)],
                          client_max_size=16 * 1024 * 1024)
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    app[METRICS] = PdpMetrics(registry)
    app[STATE] = PolicyState(app[METRICS], settings.cache_size)
    if traced:  # first: the exporter flushes last
        app[TRACING] = traced.tracer
        app.cleanup_ctx.append(traced.ctx)
    if settings.policy_source == "database" or settings.audit_postgres:
        app.cleanup_ctx.append(pool_ctx)
    app.cleanup_ctx.append(audit_ctx(settings, "pdp"))
    app.cleanup_ctx.append(policy_ctx)
    app.cleanup_ctx.append(shadow_ctx)
    app.cleanup_ctx.append(session_ctx)
    if settings.admin_enabled:
        config = AuthConfig(audience=settings.admin_audience or "", issuer=settings.admin_issuer,
                            jwks_url=settings.admin_jwks_url)
        app.cleanup_ctx.append(authenticator_ctx(config, SESSION, ADMIN_AUTH))
    health.setup_routes(app)
    api.setup_routes(app)
    admin.setup_routes(app)
    admin_ops.setup_routes(app)
    if settings.console_enabled:
        setup_console(app)
    return app


def _caller(request: web.Request) -> str | None:
    """The access log's subject: the admin API's authenticated caller (decision calls have none)."""
    who = request.get(ADMIN_PRINCIPAL)
    return who.subject if who is not None else None


async def pool_ctx(app: web.Application) -> AsyncIterator[None]:
    """Resolve the DSN (embedded Postgres when unset), open the pool, apply migrations."""
    settings = app[SETTINGS]
    dsn = await db.resolve_dsn(settings.database_url.get() if settings.database_url else None, settings.data_dir)
    pool = await db.create_pool(dsn)
    try:
        await db.apply_migrations(pool)
        app[DSN], app[DB_POOL] = dsn, pool
        yield
    finally:
        await pool.close()


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's one ClientSession (JWKS fetches)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        app[SESSION] = session
        yield


async def shadow_ctx(app: web.Application) -> AsyncIterator[None]:
    """Re-decide a sample of live decisions with stock Casbin, off the hot path (pdp/shadow.py)."""
    audit = app.get(AUDIT)
    shadow = Shadow(app[SETTINGS].shadow_sample, app[METRICS], audit.emit if audit is not None else None)
    app[SHADOW] = shadow
    task = asyncio.create_task(shadow.run())
    try:
        yield
    finally:
        await cancel_and_wait(task)


async def policy_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the policy, then keep it current: LISTEN (database mode) or watch the file."""
    settings, state = app[SETTINGS], app[STATE]
    follow: asyncio.Task[None] | None = None  # database mode in development: the file's edits become versions
    if settings.policy_source == "database":
        pool = app[DB_POOL]
        text = await asyncio.to_thread(settings.policy_path.read_text)
        if not await store.has_versions(pool):
            # Validate before storing: an invalid import would be the active version and block every start.
            await asyncio.to_thread(parse_policy, text)
        imported = await store.import_if_empty(pool, text, "mcpgw-pdp", f"imported from {settings.policy_path}")
        if imported is not None:
            log.info("policy imported into an empty database", extra={"policy_version": imported})
            _audit_import(app, imported, settings.policy_path)
        path = settings.policy_path
        if settings.policy_follow_file:
            current, mark = await _read_settled(path)
            await filesync.store_if_changed(pool, current, path, app.get(AUDIT))  # edits made while stopped

            async def store_change(text: str) -> None:
                await filesync.store_if_changed(pool, text, path, app.get(AUDIT), app[METRICS])

            follow = asyncio.create_task(filewatch.watch(path, settings.watch_interval, settings.watch_settle,
                                                         mark, store_change, app[METRICS]))
        else:
            await filesync.report_drift(pool, text, path)

        async def reload() -> None:
            row = await store.active(pool)
            if row is not None:
                await state.load(row["yaml"], store.version_label(row["version"]), row["model"])

        await reload()  # fail start-up when the stored policy cannot load
        task = asyncio.create_task(store.listen_forever(app[DSN], reload))
    elif settings.casbin_model_file and settings.casbin_policy_file:
        task = await _native_files(state, settings.casbin_model_file, settings.casbin_policy_file, settings)
    else:
        path = settings.policy_path
        text, mark = await _read_settled(path)
        await state.load(text, _file_version(text))  # fail start-up when the file cannot load

        async def apply(text: str) -> None:
            await state.load(text, _file_version(text))

        task = asyncio.create_task(filewatch.watch(path, settings.watch_interval, settings.watch_settle,
                                                   mark, apply, app[METRICS]))
    try:
        yield
    finally:
        for running in (task, follow):
            await cancel_and_wait(running)


async def _native_files(state: PolicyState, model_path: Path, policy_path: Path,
                        settings: PdpSettings) -> asyncio.Task[None]:
    """File mode for a native Casbin pair: load both files, reload when either changes."""
    (model, model_mark), (text, policy_mark) = await _read_settled(model_path), await _read_settled(policy_path)
    await state.load(text, "file:" + pair_sha256(model, text)[:12], model)  # fail start-up when it cannot load

    async def reload(_changed: str) -> None:
        model = await asyncio.to_thread(model_path.read_text)
        text = await asyncio.to_thread(policy_path.read_text)
        await state.load(text, "file:" + pair_sha256(model, text)[:12], model)

    watchers = [filewatch.watch(p, settings.watch_interval, settings.watch_settle, mark, reload)
                for p, mark in ((model_path, model_mark), (policy_path, policy_mark))]
    return asyncio.create_task(_together(*watchers))


async def _together(*coros: Any) -> None:
    await asyncio.gather(*coros)


def _audit_import(app: web.Application, version: int, path: Path) -> None:
    """The first import is a versioned change like any other: one policy_change audit event."""
    audit = app.get(AUDIT)
    if audit is not None:
        audit.emit(AuditEvent(event_type="policy_change", service="pdp", subject="mcpgw-pdp", action="import",
                              policy_version=store.version_label(version), status="success",
                              extra={"from_version": None, "to_version": store.version_label(version),
                                     "comment": f"imported from {path}"}))


def _file_version(text: str) -> str:
    return "file:" + sha256_text(text)[:12]


async def _read_settled(path: Path, attempts: int = 50) -> tuple[str, filewatch.Mark]:
    """The file's text once a read is not overlapped by a write (start-up)."""
    for _ in range(attempts):
        read = await asyncio.to_thread(filewatch.read_consistent, path)
        if read is not None:
            return read
        await asyncio.sleep(0.05)
    raise RuntimeError(f"policy file {path} kept changing while it was read")
