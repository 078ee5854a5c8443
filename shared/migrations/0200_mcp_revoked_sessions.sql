-- MCP sessions ended by DELETE on some gateway replica, so every replica refuses them.
-- session_hash is a keyed hash of the session's random part (never the Mcp-Session-Id itself);
-- rows are useless after expires_at (the session would have expired anyway) and are pruned.
CREATE TABLE IF NOT EXISTS mcp_revoked_sessions (
    session_hash  text PRIMARY KEY,
    subject_hash  text NOT NULL,
    revoked_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS mcp_revoked_sessions_expires ON mcp_revoked_sessions (expires_at);
