"""Publishing a reviewed draft, and rollback as a reviewed draft: shared by the console and the admin API.

A rollback publishes content, so it goes through four eyes like any change (our call, see
docs/console.md "Publishing and roll back"): asking for one creates a submitted draft holding the
earlier version's content; another approver approves it (console) or confirms it (the same
rollback asked by a different admin, API and CLI). Emergency blocks stay immediate: they only deny.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp import web

from pdp import store
from pdp.policy import PolicyInvalid, compile_policy, parse_policy
from pdp.policy.native import parse_native
from pdp.publish import apply_active
from pdp.ui import drafts
from shared.keys import DB_POOL


def loads(text: str, model: str | None) -> bool:
    """Whether this PDP can load the policy text (a native Casbin pair when `model` is given)."""
    try:
        if model is not None:
            parse_native(model, text)
        else:
            compile_policy(parse_policy(text))
    except PolicyInvalid:
        return False
    return True


NO_LONGER_LOADS = "the submitted draft no longer validates"


async def model_of(pool: asyncpg.Pool, row: Any) -> str | None:
    """The Casbin model of the version a rollback draft restores (None for YAML and other drafts)."""
    if row["restores_version"] is None:
        return None
    return await pool.fetchval("SELECT model FROM policy_versions WHERE version = $1", row["restores_version"])


async def still_loads(pool: asyncpg.Pool, row: Any) -> bool:
    """Whether a submitted draft still loads, checked before it is published (console Approve, API confirm)."""
    return await asyncio.to_thread(loads, row["yaml"], await model_of(pool, row))


async def request(pool: asyncpg.Pool, version: int, subject: str, comment: str) -> int:
    """A submitted draft restoring `version`, asked for by `subject` (its one contributor); its id.

    KeyError when the version does not exist; ValueError when this PDP cannot load it.
    """
    row = await store.get_version(pool, version)
    if row is None:
        raise KeyError(version)
    if not loads(row["yaml"], row["model"]):
        raise ValueError(f"v{version} does not load under this PDP's validation")
    active = await store.active(pool)
    tests = await drafts.current_tests(pool, version)
    why = comment.strip() or "no reason given"
    return await drafts.create(pool, row["yaml"], tests, f"roll back to v{version}", subject,
                               active["version"] if active else None, restores_version=version,
                               comment=f"roll back to v{version}: {why}")


async def publish(app: web.Application, *, subject: str, roles: list[str], remote: str | None, row: Any,
                  comment: str, self_approve: bool) -> tuple[int, int | None]:
    """Approve a submitted draft (OwnChange/DraftConflict as drafts.approve), load and audit it."""
    version, previous = await drafts.approve(app[DB_POOL], row["id"], subject, comment,
                                             self_approve=self_approve)
    restores = row["restores_version"]
    extra: dict[str, Any] = {"draft": row["id"], "author": row["author"], "contributors": list(row["contributors"]),
                             "approver": subject}
    if restores is not None:
        extra["restores"] = store.version_label(restores)
    await apply_active(app, subject=subject, roles=roles, op="rollback" if restores is not None else "approve",
                       previous=previous, version=version, remote=remote, extra=extra)
    return version, previous
