-- intake: what the registry tools (finestra-intake merge, unmerge, dismiss, place) record,
-- so that every decision says who, when and why, and a merge can be put back exactly.

-- A merge also moves the merged file's current household membership: the row itself when
-- the kept file had none, else the row is closed (the kept file's own household stands).
ALTER TABLE merges ADD COLUMN moved_memberships  bigint[] NOT NULL DEFAULT '{}';
ALTER TABLE merges ADD COLUMN closed_memberships bigint[] NOT NULL DEFAULT '{}';
-- Candidates the merge marked merged; unmerge makes them pending again.
ALTER TABLE merges ADD COLUMN candidates         bigint[] NOT NULL DEFAULT '{}';
CREATE INDEX merges_keep ON merges (keep_id);
CREATE INDEX merges_merged ON merges (merged_id);

-- Who decided a candidate (merged or dismissed), when and why.
ALTER TABLE match_candidates ADD COLUMN decided_by      text;
ALTER TABLE match_candidates ADD COLUMN decided_at      timestamptz;
ALTER TABLE match_candidates ADD COLUMN decision_reason text;
ALTER TABLE match_candidates ADD COLUMN merge_id        bigint REFERENCES merges (id);
CREATE INDEX match_candidates_status ON match_candidates (status, id);

-- Who placed an unplaced case, and where.
ALTER TABLE unplaced ADD COLUMN resolved_by     text;
ALTER TABLE unplaced ADD COLUMN resolved_centre text REFERENCES centres (code);
CREATE INDEX unplaced_open ON unplaced (created_at) WHERE resolved_at IS NULL;
