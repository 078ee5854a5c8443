"""Impact replay against real Postgres: the grouped query and paged examples equal a row-by-row replay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from pdp.policy import load_engine
from pdp.ui.replay import FIRST_PAGE_SQL, replay, replay_recent

POLICY = """\
roles:
  dev:
    permissions:
      - resource: "mcp:dev:*"
        actions: [invoke_tool]
user_roles:
  alice: [dev]
  zed: [dev]
group_roles:
  /eng: [dev]
default_policy: deny
"""
COLUMNS = ["event_id", "ts", "service", "event_type", "subject", "roles", "action", "mcp_server", "tool",
           "resource", "decision", "decision_id", "extra"]
TO_DENY = {150, 170, 299}  # alice's allowed calls: they flip to deny once the draft drops her binding
TO_ALLOW = {7}  # a deny recorded for bob, whose token carried the role dev: allowed on replay


def _rows() -> list[tuple]:
    """300 PDP decisions, newest (i=0) first; rows 99 and 100 share a time across the first page's end."""
    now = datetime.now(UTC)
    out = []
    for i in range(300):
        ts = now - timedelta(seconds=99 if i == 100 else i)
        subject, decision, extra = ("bob", "deny", None)
        if i in TO_DENY:
            subject, decision = "alice", "allow"
        elif i % 3 == 0:
            subject, decision, extra = "carol", "allow", '{"groups": ["/eng"]}'
        out.append((uuid.uuid4(), ts, "pdp", "policy_decision", subject, ["dev"] if i == 7 else [], "invoke_tool",
                    "dev", "run", "mcp:dev:run", decision, f"d{i}", extra))
    # A gateway row that would flip too: not a PDP decision, never replayed.
    out.append((uuid.uuid4(), now, "gateway", "mcp_request", "alice", [], "invoke_tool", "dev", "run",
                "mcp:dev:run", "allow", "gw", None))
    return out


async def test_replay_recent_equals_row_by_row_replay(pg_pool):
    rows = _rows()
    async with pg_pool.acquire() as conn:
        await conn.copy_records_to_table("audit_events", records=[r[:-1] + (None,) for r in rows], columns=COLUMNS)
        for r in rows:
            if r[-1]:
                await conn.execute("UPDATE audit_events SET extra = $1::jsonb WHERE event_id = $2", r[-1], r[0])
    draft = POLICY.replace("  alice: [dev]\n", "")
    for n, max_examples in ((200, 20), (300, 20), (300, 1), (100, 20)):
        fast = await replay_recent(pg_pool, load_engine(draft, "d"), n, max_examples)
        slow = replay(load_engine(draft, "d"), await pg_pool.fetch(FIRST_PAGE_SQL, n), max_examples)
        assert (fast.replayed, fast.skipped, fast.flips, fast.by_user, fast.by_tool, fast.examples) == (
            slow.replayed, slow.skipped, slow.flips, slow.by_user, slow.by_tool, slow.examples)
        expected = sorted(i for i in TO_DENY | TO_ALLOW if i < n)[:max_examples]
        flips = {"allow→deny": len([i for i in TO_DENY if i < n]), "deny→allow": len(TO_ALLOW)}
        assert fast.replayed == n and fast.flips == {k: v for k, v in flips.items() if v}
        assert [e["decision_id"] for e in fast.examples] == [f"d{i}" for i in expected]
