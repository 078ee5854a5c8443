-- PDP policy versions: every stored policy, exactly one of them active.
CREATE TABLE IF NOT EXISTS policy_versions (
    version           integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    yaml              text NOT NULL,
    sha256            text NOT NULL,
    author            text NOT NULL,
    comment           text NOT NULL DEFAULT '',
    created_at        timestamptz NOT NULL DEFAULT now(),
    status            text NOT NULL DEFAULT 'inactive' CHECK (status IN ('active', 'inactive')),
    activated_at      timestamptz,
    previous_version  integer REFERENCES policy_versions (version)
);
CREATE UNIQUE INDEX IF NOT EXISTS policy_versions_one_active ON policy_versions (status) WHERE status = 'active';
