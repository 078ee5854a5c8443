"""Drafts and their review, in Postgres. Approval publishes through pdp.store in one transaction.

Four eyes: every subject who created, saved or submitted a draft's content is one of its
`contributors`; none of them may review it (unless self-approval is configured). A rollback is a
draft whose content is an earlier version (`restores_version`), reviewed like any other change.
"""

from __future__ import annotations

import asyncpg

from pdp import store

COLUMNS = ("id, title, author, comment, base_version, status, created_at, updated_at, submitted_at, reviewer, "
           "review_comment, reviewed_at, published_version, contributors, restores_version")


def _contributes(param: str) -> str:
    """SQL SET clause adding the subject in `param` to the draft's contributors (once)."""
    return f"contributors = CASE WHEN {param} = ANY(contributors) THEN contributors ELSE contributors || {param} END"


class DraftConflict(Exception):
    """The draft is not in a state that allows this step; the message says why."""


class OwnChange(Exception):
    """The reviewer wrote (created, saved or submitted) the change under review: four eyes refuse."""


def own_change_message(contributors: list[str]) -> str:
    """Why a contributor may not review: names everyone whose content this is."""
    return (f"you contributed to this change (contributors: {', '.join(contributors)}); "
            "an approver who did not create, save or submit it must review it")


async def create(pool: asyncpg.Pool, text: str, tests: str, title: str, author: str,
                 base_version: int | None, *, restores_version: int | None = None, comment: str = "") -> int:
    """A new draft (submitted at once when it restores an earlier version); returns its id."""
    return int(await pool.fetchval(
        "INSERT INTO console_drafts (yaml, tests, title, author, base_version, contributors, restores_version, "
        "comment, status, submitted_at) VALUES ($1, $2, $3, $4, $5, ARRAY[$4], $6, $7, "
        "CASE WHEN $6::integer IS NULL THEN 'draft' ELSE 'submitted' END, "
        "CASE WHEN $6::integer IS NULL THEN NULL ELSE now() END) RETURNING id",
        text, tests, title, author, base_version, restores_version, comment))


async def open_rollback(pool: asyncpg.Pool, version: int) -> asyncpg.Record | None:
    """The newest submitted draft restoring `version`, if any."""
    return await pool.fetchrow(
        f"SELECT {COLUMNS} FROM console_drafts WHERE restores_version = $1 AND status = 'submitted' "
        "ORDER BY id DESC LIMIT 1", version)


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


async def save(pool: asyncpg.Pool, draft_id: int, text: str, tests: str, title: str, subject: str) -> None:
    """Update an open draft (a rejected one becomes a draft again); `subject` becomes a contributor.

    Edited content is no longer "an earlier version as it was": restores_version is cleared.
    """
    done = await pool.fetchval(
        "UPDATE console_drafts SET yaml = $2, tests = $3, title = $4, updated_at = now(), status = 'draft', "
        f"restores_version = NULL, {_contributes('$5::text')} "
        "WHERE id = $1 AND status IN ('draft', 'rejected') RETURNING id", draft_id, text, tests, title, subject)
    if done is None:
        raise DraftConflict("only a draft that is not under review or published can be edited")


async def submit(pool: asyncpg.Pool, draft_id: int, comment: str, subject: str) -> None:
    """Mark a draft as submitted for review (the caller validated it and ran its tests); `subject`
    becomes a contributor."""
    done = await pool.fetchval(
        "UPDATE console_drafts SET status = 'submitted', comment = $2, submitted_at = now(), updated_at = now(), "
        f"reviewer = NULL, review_comment = NULL, reviewed_at = NULL, {_contributes('$3::text')} "
        "WHERE id = $1 AND status IN ('draft', 'rejected') RETURNING id", draft_id, comment, subject)
    if done is None:
        raise DraftConflict("only an open draft can be submitted")


async def reject(pool: asyncpg.Pool, draft_id: int, reviewer: str, comment: str, *, self_approve: bool) -> None:
    """Reject a submitted draft with a comment (not by one of its contributors)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await _for_review(conn, draft_id, reviewer, self_approve, "rejected")
        await conn.execute(
            "UPDATE console_drafts SET status = 'rejected', reviewer = $2, review_comment = $3, reviewed_at = now(), "
            "updated_at = now() WHERE id = $1", row["id"], reviewer, comment)


async def _for_review(conn: asyncpg.Connection, draft_id: int, reviewer: str, self_approve: bool,
                      what: str) -> asyncpg.Record:
    """The submitted draft, locked; OwnChange when the reviewer contributed to it (checked under the
    lock, so a save racing the review cannot slip a contributor past it)."""
    row = await conn.fetchrow(
        "SELECT id, yaml, author, comment, status, contributors, restores_version FROM console_drafts "
        "WHERE id = $1 FOR UPDATE", draft_id)
    if row is None or row["status"] != "submitted":
        raise DraftConflict(f"only a submitted draft can be {what}")
    if reviewer in row["contributors"] and not self_approve:
        raise OwnChange(own_change_message(list(row["contributors"])))
    return row


async def approve(pool: asyncpg.Pool, draft_id: int, reviewer: str, comment: str, *,
                  self_approve: bool) -> tuple[int, int | None]:
    """Store and activate the draft's policy and mark it approved, in one transaction.

    A rollback draft publishes the restored version's content (with its Casbin model, if native)
    as a new version. Returns (new version, previously active version). The activation NOTIFY goes
    out at commit. OwnChange when the reviewer is one of the draft's contributors.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await _for_review(conn, draft_id, reviewer, self_approve, "approved")
        model = None
        if row["restores_version"] is not None:
            model = await conn.fetchval("SELECT model FROM policy_versions WHERE version = $1", row["restores_version"])
        text = f"{row['comment']} (draft {draft_id}, approved by {reviewer})"
        version, previous = await store.create_version_in(conn, row["yaml"], row["author"], text, activate=True,
                                                          model=model)
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
