"""The gateway opens its database pool whenever a database is configured, not only for audit."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from shared.keys import DB_POOL
from tests.integration.gateway_harness import gateway_stack


async def test_postgres_audit_off_keeps_the_shared_database_for_notifications(
    tmp_path: Path, pg_dsn: str
) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {}, env={"MCPGW_AUDIT_POSTGRES": "false"}) as stack:
        # The pool exists, so the policy-change and revocation listeners run...
        assert stack.app.get(DB_POOL) is not None
        await stack.call("GET", "/mcp/servers")
    # ...while the audit sink really is off: no gateway rows in the shared table.
    conn = await asyncpg.connect(pg_dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM audit_events WHERE service = 'gateway'")
    finally:
        await conn.close()
    assert rows == 0
