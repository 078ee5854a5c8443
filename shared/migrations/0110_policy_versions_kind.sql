-- Native Casbin policy versions: `kind` says how `yaml` is read. For kind 'casbin' the `yaml`
-- column holds the Casbin policy lines and `model` the model.conf text; YAML versions keep model NULL.
ALTER TABLE policy_versions ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'yaml';
ALTER TABLE policy_versions ADD COLUMN IF NOT EXISTS model text;
DO $$ BEGIN
    ALTER TABLE policy_versions ADD CONSTRAINT policy_versions_kind
        CHECK ((kind = 'yaml' AND model IS NULL) OR (kind = 'casbin' AND model IS NOT NULL));
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
