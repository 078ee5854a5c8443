"""Fixtures every test layer may use: a real PostgreSQL (embedded unless DATABASE_URL is set)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from shared import db
from tests.fixtures.pg import create_database, drop_database

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """DSN of the test PostgreSQL server (shared by xdist workers; one database per test)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        return configured
    return db.start_embedded(ROOT / ".data" / "test")


@pytest.fixture
async def pg_dsn(pg_server_dsn: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:16]
    yield await create_database(pg_server_dsn, name)
    await drop_database(pg_server_dsn, name)


@pytest.fixture
async def pg_pool(pg_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a fresh database with all migrations applied."""
    pool = await db.create_pool(pg_dsn)
    await db.apply_migrations(pool)
    yield pool
    await pool.close()
