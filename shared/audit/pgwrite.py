"""Writing audit batches into Postgres: a fast COPY path and an idempotent staging path.

COPY cannot say ON CONFLICT, so anything that might already be in the table (spool replay, a batch
whose commit acknowledgement was lost) goes through the staging path: COPY into a temporary table,
then `INSERT ... SELECT ... ON CONFLICT (event_id) DO NOTHING`. Fresh batches take the fast path.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg

from shared.audit.event import COLUMNS, AuditEvent
from shared.audit.sanitize import quarantine

log = logging.getLogger(__name__)

TABLE = "audit_events"
STAGING = "audit_events_staging"
_COLS = ", ".join(COLUMNS)
_CREATE_STAGING = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGING} ON COMMIT DELETE ROWS "
    f"AS SELECT {_COLS} FROM {TABLE} WITH NO DATA"
)
_MERGE = (
    f"INSERT INTO {TABLE} ({_COLS}) SELECT {_COLS} FROM {STAGING} "
    "ON CONFLICT (event_id) DO NOTHING"
)

# Errors meaning "the database is not there right now" (retry later) as opposed to "this data is
# wrong" (retrying can never help).
UNAVAILABLE = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database is unreachable rather than the batch being bad."""
    return isinstance(exc, UNAVAILABLE)


def row(event: AuditEvent) -> tuple[Any, ...]:
    """The event's COPY row; an event that cannot be serialised is stored quarantined instead."""
    try:
        return event.to_row()
    except Exception as exc:  # noqa: BLE001 - orjson raises TypeError/ValueError subclasses
        log.error("audit event not serialisable; stored quarantined", extra={"event_id": str(event.event_id), "error": repr(exc)})
        return quarantine(event, f"not serialisable: {exc}").to_row()


async def copy_fast(conn: asyncpg.Connection, events: list[AuditEvent]) -> int:
    """COPY fresh events straight into the table; return how many were written."""
    await conn.copy_records_to_table(TABLE, records=[row(e) for e in events], columns=COLUMNS)
    return len(events)


async def copy_idempotent(conn: asyncpg.Connection, events: list[AuditEvent]) -> int:
    """COPY via a staging table and merge, skipping event_ids already stored; return rows added."""
    async with conn.transaction():
        await conn.execute(_CREATE_STAGING)
        await conn.copy_records_to_table(STAGING, records=[row(e) for e in events], columns=COLUMNS)
        status = await conn.execute(_MERGE)
    return int(status.rsplit(" ", 1)[-1])


async def write(pool: asyncpg.Pool, events: list[AuditEvent], *, idempotent: bool) -> int:
    """Write one batch; a unique violation on the fast path retries idempotently."""
    async with pool.acquire() as conn:
        if idempotent:
            return await copy_idempotent(conn, events)
        try:
            return await copy_fast(conn, events)
        except asyncpg.UniqueViolationError:
            return await copy_idempotent(conn, events)
