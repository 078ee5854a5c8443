"""Apply a newly active policy version here and audit the change (admin API and console share it).

Other replicas load the version when they hear the NOTIFY sent by the activating transaction.
"""

from __future__ import annotations

import difflib
from typing import Any

from aiohttp import web

from pdp import store
from pdp.keys import STATE
from shared.audit import AuditEvent
from shared.keys import AUDIT, DB_POOL


def text_diff(old: str, new: str, old_label: str, new_label: str) -> str:
    """A unified diff of two policy texts."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        old_label, new_label))


async def apply_active(app: web.Application, *, subject: str, roles: list[str], op: str, previous: int | None,
                       version: int, remote: str | None, extra: dict[str, Any] | None = None) -> None:
    """Load `version` in this process and emit one `policy_change` audit event with the diff."""
    pool = app[DB_POOL]
    new = await store.get_version(pool, version)
    old = await store.get_version(pool, previous) if previous is not None else None
    assert new is not None  # just activated in a committed transaction
    await app[STATE].load(new["yaml"], store.version_label(version), new["model"])
    audit = app.get(AUDIT)
    if audit is not None:
        diff = text_diff(store.version_text(old), store.version_text(new),
                         store.version_label(previous) if previous else "none", store.version_label(version))
        audit.emit(AuditEvent(
            event_type="policy_change", service="pdp", subject=subject, roles=roles, action=op,
            policy_version=store.version_label(version), status="success", client_addr=remote,
            extra={"from_version": store.version_label(previous) if previous else None,
                   "to_version": store.version_label(version), "comment": new["comment"], "diff": diff[:100_000],
                   **(extra or {})},
        ))
