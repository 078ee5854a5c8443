-- The Impact replay (console page and `mcpgw policy impact`) reads the newest PDP decisions:
-- one backward scan of this partial index, no filter, no sort (pdp/ui/replay.py REPLAY_SQL).
-- Built inside the migration's transaction: on a very large audit table it blocks audit writes
-- while it builds; create it by hand with CREATE INDEX CONCURRENTLY first to avoid that.
CREATE INDEX IF NOT EXISTS audit_events_pdp_decisions_idx ON audit_events (ts, id)
    WHERE event_type = 'policy_decision' AND service = 'pdp';
