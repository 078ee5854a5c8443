"""Console sessions and pending sign-ins in Postgres (shared by every PDP replica).

The browser holds a random id; the table holds only its sha256, so a database read does not
yield a usable cookie. A session ends on logout or after `idle` seconds without a request.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

from pdp.ui.oidc import Identity, random_token

LOGIN_TTL = 600.0  # seconds a started sign-in may take
MAX_PENDING_LOGINS = 10_000  # anyone may start a sign-in; this bounds the rows they can create


class TooManyLogins(Exception):
    """More sign-ins are in progress than MAX_PENDING_LOGINS."""


def id_hash(raw: str) -> str:
    """The stored form of a cookie id."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A signed-in console user."""

    subject: str
    name: str
    roles: tuple[str, ...]
    csrf: str


@dataclass(frozen=True)
class Login:
    """A started sign-in (between the redirect to the provider and the callback)."""

    state: str
    nonce: str
    verifier: str
    next_path: str


async def start_login(pool: asyncpg.Pool, next_path: str) -> tuple[str, Login]:
    """Record a new sign-in; return (cookie id, its state/nonce/verifier)."""
    raw = random_token()
    login = Login(random_token(), random_token(), random_token(48), next_path)
    await pool.execute("DELETE FROM console_logins WHERE created_at < now() - make_interval(secs => $1)", LOGIN_TTL)
    if await pool.fetchval("SELECT count(*) FROM console_logins") >= MAX_PENDING_LOGINS:
        raise TooManyLogins
    await pool.execute(
        "INSERT INTO console_logins (id_hash, state, nonce, verifier, next_path) VALUES ($1, $2, $3, $4, $5)",
        id_hash(raw), login.state, login.nonce, login.verifier, next_path)
    return raw, login


async def take_login(pool: asyncpg.Pool, raw: str) -> Login | None:
    """The sign-in this browser started (used once: the row is deleted), or None."""
    row = await pool.fetchrow(
        "DELETE FROM console_logins WHERE id_hash = $1 AND created_at > now() - make_interval(secs => $2) "
        "RETURNING state, nonce, verifier, next_path", id_hash(raw), LOGIN_TTL)
    return Login(row["state"], row["nonce"], row["verifier"], row["next_path"]) if row else None


async def create(pool: asyncpg.Pool, who: Identity, idle: float) -> str:
    """A new session for `who`; returns the cookie id. Expired sessions are pruned here."""
    raw = random_token()
    await pool.execute("DELETE FROM console_sessions WHERE last_seen < now() - make_interval(secs => $1)", idle)
    await pool.execute(
        "INSERT INTO console_sessions (id_hash, subject, name, roles, csrf) VALUES ($1, $2, $3, $4, $5)",
        id_hash(raw), who.subject, who.name, list(who.roles), random_token())
    return raw


async def touch(pool: asyncpg.Pool, raw: str, idle: float) -> Session | None:
    """The live session for a cookie id, its idle clock restarted; None when unknown or idle too long."""
    row = await pool.fetchrow(
        "UPDATE console_sessions SET last_seen = now() "
        "WHERE id_hash = $1 AND last_seen > now() - make_interval(secs => $2) "
        "RETURNING subject, name, roles, csrf", id_hash(raw), idle)
    return Session(row["subject"], row["name"], tuple(row["roles"]), row["csrf"]) if row else None


async def end(pool: asyncpg.Pool, raw: str) -> None:
    """Delete a session (logout)."""
    await pool.execute("DELETE FROM console_sessions WHERE id_hash = $1", id_hash(raw))
