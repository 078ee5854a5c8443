"""Session revocation shared by every gateway replica (Postgres table + LISTEN/NOTIFY).

A DELETEd session is refused at once here, then written to `mcp_revoked_sessions` with a
pg_notify in the same transaction; the others LISTEN and reload the table on every (re)connect
(notifications sent while down are lost). Only keyed hashes travel. Without a database the set
stays per replica.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import asyncpg
from aiohttp import web

from gateway.mcp.sessions import Session, SessionCodec
from shared import pglisten
from shared.keys import DB_POOL

log = logging.getLogger(__name__)

CHANNEL = "mcpgw_mcp_session_revoked"
PRUNE_EVERY = 600.0  # seconds between deletes of expired rows (a replica only needs live ones)

_INSERT = """INSERT INTO mcp_revoked_sessions (session_hash, subject_hash, expires_at)
             VALUES ($1, $2, $3) ON CONFLICT (session_hash) DO NOTHING"""
_LOAD = """SELECT session_hash, extract(epoch FROM expires_at)::float8 AS expires
           FROM mcp_revoked_sessions WHERE expires_at > now()"""
_PRUNE = "DELETE FROM mcp_revoked_sessions WHERE expires_at <= now()"


def encode_payload(key: str, expires: float) -> str:
    """NOTIFY payload announcing one revocation: `<key> <unix expiry>`."""
    return f"{key} {expires:.3f}"


def decode_payload(payload: str) -> tuple[str, float] | None:
    """(key, expiry) from a NOTIFY payload; None for anything malformed (ignored, never trusted)."""
    key, _, expires = payload.strip().partition(" ")
    if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
        return None
    try:
        value = float(expires)
    except ValueError:
        return None
    return (key, value) if value == value else None  # NaN is not an expiry


class Revocations:
    """Revokes sessions on this replica and, with a pool, on all of them."""

    def __init__(self, codec: SessionCodec, pool: asyncpg.Pool | None = None) -> None:
        self.codec = codec
        self.pool = pool

    async def revoke(self, session: Session) -> None:
        """End `session` here at once, then record and announce it (raises if the database fails)."""
        key, expires = self.codec.revoke(session)
        if self.pool is None:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_INSERT, key, session.subject_hash, datetime.fromtimestamp(expires, UTC))
            # Delivered at commit: no replica hears of a revocation that was rolled back.
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, encode_payload(key, expires))

    def on_notify(self, payload: str) -> None:
        """Adopt a revocation announced by any replica (our own echo included: idempotent)."""
        parsed = decode_payload(payload)
        if parsed is None:
            log.warning("ignored a malformed session-revocation notification")
            return
        self.codec.note_revoked(*parsed)

    async def load(self, conn: asyncpg.Connection | asyncpg.Pool) -> None:
        """Adopt every live revocation in the table."""
        self.codec.replace_revoked({r["session_hash"]: r["expires"] for r in await conn.fetch(_LOAD)})

    async def prune(self) -> int:
        """Delete expired rows; return how many went."""
        if self.pool is None:
            return 0
        status = await self.pool.execute(_PRUNE)
        return int(status.split()[-1])


async def prune_loop(revocations: Revocations, every: float = PRUNE_EVERY) -> None:
    """Delete expired rows every `every` seconds; a failure waits for the next round."""
    while True:
        await asyncio.sleep(every)
        try:
            gone = await revocations.prune()
            if gone:
                log.info("pruned expired session revocations", extra={"rows": gone})
        except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
            log.warning("pruning session revocations failed", extra={"error": type(exc).__name__})


def revocations_ctx(revocations: Revocations) -> Callable[[web.Application], AsyncIterator[None]]:
    """Cleanup ctx: with the app's database pool, load, then listen and prune for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool = app.get(DB_POOL)
        if pool is None:
            log.info("no database: a DELETEd MCP session is refused only by the replica that received it")
            yield
            return
        revocations.pool = pool
        await revocations.prune()
        await revocations.load(pool)  # before serving: a restarted replica must not revive a session
        # One pool connection LISTENs on CHANNEL and reloads the table on every (re)connect, after
        # LISTEN, so nothing falls between the two.
        listen = pglisten.listen_forever(pool, CHANNEL, revocations.on_notify, on_connect=revocations.load)
        tasks = [asyncio.create_task(listen), asyncio.create_task(prune_loop(revocations))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            revocations.pool = None

    return ctx
