"""Policy versions in Postgres, and LISTEN/NOTIFY so every replica swaps within a second.

Activation happens in one transaction that also calls pg_notify; Postgres delivers the
notification only at commit, so a replica never hears of a version it cannot read yet.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from pdp.state import pair_sha256, sha256_text
from shared import pglisten
from shared.authzen import POLICY_CHANNEL, version_label

log = logging.getLogger(__name__)

CHANNEL = POLICY_CHANNEL  # the wire contract's (shared/authzen): gateways listen on it
# Serializes activations across replicas (any constant distinct from the migration lock).
ACTIVATE_LOCK_ID = 0x6D6370677702
LIST_COLUMNS = "version, sha256, author, comment, created_at, status, activated_at, previous_version, kind"


async def active(pool: asyncpg.Pool) -> asyncpg.Record | None:
    """The active version row (with yaml, and model for native Casbin versions), or None."""
    return await pool.fetchrow(f"SELECT {LIST_COLUMNS}, yaml, model FROM policy_versions WHERE status = 'active'")


async def get_version(pool: asyncpg.Pool, version: int) -> asyncpg.Record | None:
    """One version row with its yaml (and model for native Casbin versions)."""
    return await pool.fetchrow(f"SELECT {LIST_COLUMNS}, yaml, model FROM policy_versions WHERE version = $1", version)


async def list_versions(pool: asyncpg.Pool, limit: int = 100) -> list[asyncpg.Record]:
    """Newest first, without yaml."""
    return await pool.fetch(f"SELECT {LIST_COLUMNS} FROM policy_versions ORDER BY version DESC LIMIT $1", limit)


async def _activate(conn: asyncpg.Connection, version: int) -> int | None:
    previous = await conn.fetchval("SELECT version FROM policy_versions WHERE status = 'active' FOR UPDATE")
    if previous == version:
        return previous
    await conn.execute("UPDATE policy_versions SET status = 'inactive' WHERE status = 'active'")
    await conn.execute(
        "UPDATE policy_versions SET status = 'active', activated_at = now(), previous_version = $2 WHERE version = $1",
        version, previous,
    )
    await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, str(version))
    return previous


async def create_version(
    pool: asyncpg.Pool, text: str, author: str, comment: str, *, activate: bool, model: str | None = None
) -> tuple[int, int | None]:
    """Store a (validated) policy — YAML, or with `model` a native Casbin pair; optionally activate it.

    Returns (version, previously active).
    """
    async with pool.acquire() as conn, conn.transaction():
        return await create_version_in(conn, text, author, comment, activate=activate, model=model)


async def create_version_in(
    conn: asyncpg.Connection, text: str, author: str, comment: str, *, activate: bool, model: str | None = None
) -> tuple[int, int | None]:
    """`create_version` inside the caller's transaction (the console marks a draft approved in it)."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", ACTIVATE_LOCK_ID)
    version = await conn.fetchval(
        "INSERT INTO policy_versions (yaml, sha256, author, comment, kind, model)"
        " VALUES ($1, $2, $3, $4, $5, $6) RETURNING version",
        text, sha256_text(text) if model is None else pair_sha256(model, text), author, comment,
        "yaml" if model is None else "casbin", model,
    )
    previous = await conn.fetchval("SELECT version FROM policy_versions WHERE status = 'active'")
    if activate:
        previous = await _activate(conn, version)
    return version, previous


async def activate(pool: asyncpg.Pool, version: int) -> int | None:
    """Make `version` active; return the version it replaced. KeyError when it does not exist."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ACTIVATE_LOCK_ID)
        if await conn.fetchval("SELECT 1 FROM policy_versions WHERE version = $1", version) is None:
            raise KeyError(version)
        return await _activate(conn, version)


async def rollback_target(pool: asyncpg.Pool) -> int | None:
    """The version that was active before the current one."""
    return await pool.fetchval("SELECT previous_version FROM policy_versions WHERE status = 'active'")


async def has_versions(pool: asyncpg.Pool) -> bool:
    """Whether any policy version is stored."""
    return bool(await pool.fetchval("SELECT EXISTS (SELECT 1 FROM policy_versions)"))


async def import_if_empty(pool: asyncpg.Pool, text: str, author: str, comment: str) -> int | None:
    """On first start: store and activate `text` when no version exists (one replica wins)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", ACTIVATE_LOCK_ID)
        if await conn.fetchval("SELECT count(*) FROM policy_versions"):
            return None
        version = await conn.fetchval(
            "INSERT INTO policy_versions (yaml, sha256, author, comment) VALUES ($1, $2, $3, $4) RETURNING version",
            text, sha256_text(text), author, comment,
        )
        await _activate(conn, version)
        return int(version)


def row_to_json(row: asyncpg.Record, with_yaml: bool = False) -> dict[str, Any]:
    """A version row for the admin API."""
    out = {k: row[k] for k in LIST_COLUMNS.split(", ")}
    out["policy_version"] = version_label(row["version"])
    if with_yaml:
        out["yaml"] = row["yaml"]
        if row["model"] is not None:
            out["casbin"] = {"model": row["model"], "policy": row["yaml"]}
    return out


def version_text(row: asyncpg.Record | None) -> str:
    """What a diff compares: the YAML, or a native pair's model and policy lines."""
    if row is None:
        return ""
    if row["model"] is None:
        return str(row["yaml"])
    return f"# model.conf\n{row['model'].rstrip()}\n# policy\n{row['yaml']}"


async def listen_forever(dsn: str, on_change: Callable[[], Awaitable[None]], retry: float = 1.0) -> None:
    """LISTEN on our own connection; call `on_change` on every notification and after (re)connecting.

    Reloading after each reconnect covers notifications missed while the connection was down. The
    reloads run one at a time in this task (a burst of notifications coalesces into one), so an
    older read can never be applied after a newer one.
    """
    wake = asyncio.Event()

    async def connected(_conn: asyncpg.Connection) -> None:
        wake.set()

    async def follow() -> None:
        while True:
            await wake.wait()
            wake.clear()
            try:
                await on_change()
            except Exception:  # noqa: BLE001 - keep following; try again shortly
                log.warning("policy reload failed; retrying", exc_info=True)
                await asyncio.sleep(retry)
                wake.set()

    follower = asyncio.create_task(follow())
    try:
        await pglisten.listen_forever(dsn, CHANNEL, lambda _payload: wake.set(), on_connect=connected, retry=retry)
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
