-- Four eyes: every subject who saved or submitted a draft's content may not approve it (not only
-- its creator). A rollback is a draft whose content is an earlier version (restores_version).
ALTER TABLE console_drafts ADD COLUMN IF NOT EXISTS contributors text[] NOT NULL DEFAULT '{}';
ALTER TABLE console_drafts ADD COLUMN IF NOT EXISTS restores_version integer REFERENCES policy_versions (version);
-- Drafts from before this migration: their creator is the one contributor we know of. An open
-- draft someone else saved before the upgrade keeps that gap; re-saving it records the saver.
UPDATE console_drafts SET contributors = ARRAY[author] WHERE contributors = '{}';
