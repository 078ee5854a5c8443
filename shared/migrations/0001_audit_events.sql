-- One audit table for both services.
CREATE TABLE IF NOT EXISTS audit_events (
    id              bigserial PRIMARY KEY,
    event_id        uuid NOT NULL UNIQUE,
    ts              timestamptz NOT NULL,
    service         text NOT NULL CHECK (service IN ('gateway', 'pdp')),
    event_type      text NOT NULL,
    request_id      text,
    decision_id     text,
    subject         text,
    roles           text[],
    action          text,
    mcp_server      text,
    tool            text,
    resource        text,
    decision        text,
    reason          text,
    policy_version  text,
    status          text,
    http_status     integer,
    duration_ms     double precision,
    parameters      jsonb,
    error           text,
    client_addr     text,
    extra           jsonb
);
CREATE INDEX IF NOT EXISTS audit_events_ts_idx ON audit_events (ts);
CREATE INDEX IF NOT EXISTS audit_events_subject_idx ON audit_events (subject, ts);
CREATE INDEX IF NOT EXISTS audit_events_server_tool_idx ON audit_events (mcp_server, tool, ts);
CREATE INDEX IF NOT EXISTS audit_events_decision_idx ON audit_events (decision, ts);
CREATE INDEX IF NOT EXISTS audit_events_decision_id_idx ON audit_events (decision_id);
