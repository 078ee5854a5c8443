"""`mcpgw audit query|tail` against a real database with real events."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta

from shared import audit_cli, db
from shared.audit import COLUMNS, AuditEvent


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mcpgw")
    audit_cli.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


async def seed(dsn: str) -> None:
    pool = await db.create_pool(dsn)
    try:
        await db.apply_migrations(pool)
        now = datetime.now(UTC)
        events = [
            AuditEvent("mcp_request", "gateway", subject="alice", mcp_server="db", tool="query",
                       decision="allow", status="success", ts=now - timedelta(minutes=5)),
            AuditEvent("mcp_request", "gateway", subject="bob", mcp_server="db", tool="drop",
                       decision="deny", status="denied", ts=now - timedelta(minutes=3)),
            AuditEvent("policy_decision", "pdp", subject="bob", decision="deny", ts=now - timedelta(days=3)),
        ]
        async with pool.acquire() as conn:
            await conn.copy_records_to_table("audit_events", records=[e.to_row() for e in events], columns=COLUMNS)
    finally:
        await pool.close()


def test_query_and_tail(pg_dsn, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("DATABASE_URL", pg_dsn)
    asyncio.run(seed(pg_dsn))

    assert run(["audit", "query", "--since", "1h", "--format", "json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["user"] for d in docs] == ["alice", "bob"]

    assert run(["audit", "query", "--since", "7d", "--user", "bob", "--decision", "deny", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and lines[0].startswith("timestamp,")

    assert run(["audit", "tail", "-n", "2", "--server", "db"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("TIME") and "alice" in table[1] and "bob" in table[2]

    assert run(["audit", "query", "--since", "last tuesday"]) == 2
    assert "bad time" in capsys.readouterr().err


def test_unreachable_database_exits_1(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    assert run(["audit", "query", "--since", "1h"]) == 1
    assert "cannot read the audit table" in capsys.readouterr().err


def test_bad_setting_exits_2(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MCPGW_AUDIT_BATCH_SIZE", "lots")
    assert run(["audit", "tail"]) == 2
    assert "MCPGW_AUDIT_BATCH_SIZE" in capsys.readouterr().err


async def test_tail_follow_prints_new_events(pg_dsn, tmp_path):
    """The real console entry point, following the table while another writer adds a row."""
    await seed(pg_dsn)
    env = {**os.environ, "DATABASE_URL": pg_dsn}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcpgw.cli", "audit", "tail", "--follow", "--json", "-n", "1", "--tool", "query",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=tmp_path,
    )
    try:
        first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert first["user"] == "alice"
        pool = await db.create_pool(pg_dsn)
        try:
            async with pool.acquire() as conn:
                rows = [AuditEvent("mcp_request", "gateway", subject=s, tool=t).to_row()
                        for s, t in (("carol", "drop"), ("dave", "query"))]
                await conn.copy_records_to_table("audit_events", records=rows, columns=COLUMNS)
        finally:
            await pool.close()
        followed = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert followed["user"] == "dave"  # carol's row does not match --tool query
    finally:
        proc.terminate()
        await proc.wait()
