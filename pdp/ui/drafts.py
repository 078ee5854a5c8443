"""Drafts and their review, in Postgres. Approval publishes through pdp.store in one transaction."""

from __future__ import annotations

import asyncpg

from pdp import store

COLUMNS = ("id, title, author, comment, base_version, status, created_at, updated_at, submitted_at, reviewer, "
           "review_comment, reviewed_at, published_version")


class DraftConflict(Exception):
    """The draft is not in a state that allows this step; the message says why."""


async def create(pool: asyncpg.Pool, text: str, tests: str, title: str, author: str,
                 base_version: int | None) -> int:
    """A new draft; returns its id."""
    return int(await pool.fetchval(
        "INSERT INTO console_drafts (yaml, tests, title, author, base_version) VALUES ($1, $2, $3, $4, $5) "
        "RETURNING id", text, tests, title, author, base_version))


async def current_tests(pool: asyncpg.Pool, active_version: int) -> str:
    """The policy tests that travel with the policy: those of the latest reviewed version up to the active one."""
    return str(await pool.fetchval(
        "SELECT tests FROM console_drafts WHERE published_version IS NOT NULL AND published_version <= $1 "
        "ORDER BY published_version DESC LIMIT 1", active_version) or "")


async def get(pool: asyncpg.Pool, draft_id: int) -> asyncpg.Record | None:
    """One draft with its YAML and tests."""
    return await pool.fetchrow(f"SELECT {COLUMNS}, yaml, tests FROM console_drafts WHERE id = $1", draft_id)


async def listing(pool: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    """Drafts, open ones first, newest first."""
    return await pool.fetch(
        f"SELECT {COLUMNS} FROM console_drafts "
        "ORDER BY (status IN ('draft', 'submitted')) DESC, updated_at DESC LIMIT $1", limit)


async def save(pool: asyncpg.Pool, draft_id: int, text: str, tests: str, title: str) -> None:
    """Update an open draft (a rejected one becomes a draft again)."""
    done = await pool.fetchval(
        "UPDATE console_drafts SET yaml = $2, tests = $3, title = $4, updated_at = now(), status = 'draft' "
        "WHERE id = $1 AND status IN ('draft', 'rejected') RETURNING id", draft_id, text, tests, title)
    if done is None:
        raise DraftConflict("only a draft that is not under review or published can be edited")


async def submit(pool: asyncpg.Pool, draft_id: int, comment: str) -> None:
    """Mark a draft as submitted for review (the caller validated it and ran its tests)."""
    done = await pool.fetchval(
        "UPDATE console_drafts SET status = 'submitted', comment = $2, submitted_at = now(), updated_at = now(), "
        "reviewer = NULL, review_comment = NULL, reviewed_at = NULL "
        "WHERE id = $1 AND status IN ('draft', 'rejected') RETURNING id", draft_id, comment)
    if done is None:
        raise DraftConflict("only an open draft can be submitted")


async def reject(pool: asyncpg.Pool, draft_id: int, reviewer: str, comment: str) -> None:
    """Reject a submitted draft with a comment."""
    done = await pool.fetchval(
        "UPDATE console_drafts SET status = 'rejected', reviewer = $2, review_comment = $3, reviewed_at = now(), "
        "updated_at = now() WHERE id = $1 AND status = 'submitted' RETURNING id", draft_id, reviewer, comment)
    if done is None:
        raise DraftConflict("only a submitted draft can be rejected")


async def approve(pool: asyncpg.Pool, draft_id: int, reviewer: str, comment: str) -> tuple[int, int | None]:
    """Store and activate the draft's policy and mark it approved, in one transaction.

    Returns (new version, previously active version). The activation NOTIFY goes out at commit.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow("SELECT yaml, author, comment, status FROM console_drafts WHERE id = $1 FOR UPDATE",
                                  draft_id)
        if row is None or row["status"] != "submitted":
            raise DraftConflict("only a submitted draft can be approved")
        text = f"{row['comment']} (draft {draft_id}, approved by {reviewer})"
        version, previous = await store.create_version_in(conn, row["yaml"], row["author"], text, activate=True)
        await conn.execute(
            "UPDATE console_drafts SET status = 'approved', reviewer = $2, review_comment = $3, reviewed_at = now(), "
            "updated_at = now(), published_version = $4 WHERE id = $1", draft_id, reviewer, comment, version)
        return version, previous


async def history(pool: asyncpg.Pool, limit: int = 200) -> list[asyncpg.Record]:
    """Policy versions newest first, with the review that published each (if any)."""
    return await pool.fetch(
        "SELECT v.version, v.author, v.comment, v.created_at, v.status, v.activated_at, v.previous_version, "
        "d.id AS draft_id, d.reviewer, d.review_comment, d.reviewed_at, d.submitted_at "
        "FROM policy_versions v LEFT JOIN console_drafts d ON d.published_version = v.version "
        "ORDER BY v.version DESC LIMIT $1", limit)
