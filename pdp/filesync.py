"""The policy file versus the database: follow it (development) or say loudly that it differs.

In database mode the file is imported once, into an empty database. After that the file and the
active version can drift apart, and a user who edits the file would believe the edit is in force.
Two answers, by setting:

- `policy_follow_file` (on in `make run`): every settled change of the file is validated, stored
  and activated as a new version, audited like an admin activation (author `file:PATH`); a file
  that does not validate is logged and the active version stays.
- otherwise: at start, a file that differs from the active version is reported as an error-level
  log line naming both, because the file is then *not* what the PDP enforces.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
from pathlib import Path

import asyncpg

from pdp import store
from pdp.metrics import PdpMetrics
from pdp.policy import PolicyInvalid, parse_policy
from pdp.state import sha256_text
from shared.audit import AuditEmitter, AuditEvent

log = logging.getLogger(__name__)

AUTHOR_PREFIX = "file:"


async def store_if_changed(pool: asyncpg.Pool, text: str, path: Path, audit: AuditEmitter | None,
                           metrics: PdpMetrics | None = None) -> int | None:
    """Validate `text` and make it the active version unless it already is; return the new version.

    A file that does not validate counts as a failed reload (`McpgwPolicyReloadFailed` fires for it),
    as it would in file mode, where the engine's load counts it.
    """
    row = await store.active(pool)
    if row is not None and row["sha256"] == sha256_text(text):
        return None
    try:
        await asyncio.to_thread(parse_policy, text)  # PolicyInvalid propagates: nothing stored
    except PolicyInvalid:
        if metrics is not None:
            metrics.reloads.labels("failed").inc()
        raise
    version, previous = await store.create_version(
        pool, text, AUTHOR_PREFIX + str(path), f"saved change of {path}", activate=True)
    log.info("policy file change stored and activated",
             extra={"policy_version": store.version_label(version), "path": str(path)})
    if audit is not None:
        old = row["yaml"] if row is not None else ""
        diff = "".join(difflib.unified_diff(
            old.splitlines(keepends=True), text.splitlines(keepends=True),
            store.version_label(previous) if previous else "none", store.version_label(version)))
        audit.emit(AuditEvent(
            event_type="policy_change", service="pdp", subject=AUTHOR_PREFIX + str(path), roles=[],
            action="file_change", policy_version=store.version_label(version), status="success",
            extra={"from_version": store.version_label(previous) if previous else None,
                   "to_version": store.version_label(version), "comment": f"saved change of {path}",
                   "diff": diff[:100_000]},
        ))
    return int(version)


async def report_drift(pool: asyncpg.Pool, text: str, path: Path) -> bool:
    """Log an error when the file is not the active version; return whether it differs."""
    row = await store.active(pool)
    if row is None or row["sha256"] == sha256_text(text):
        return False
    log.error(
        "policy file %s differs from the active policy %s: the file is NOT in effect "
        "(push it with `mcpgw policy push %s`, or set MCPGW_PDP_POLICY_FOLLOW_FILE=true in development)",
        path, store.version_label(row["version"]), path,
        extra={"policy_version": store.version_label(row["version"]), "path": str(path)},
    )
    return True
