-- intake: a merge carries the merged file's person facts (011) to the kept file, and records
-- what it carried so that unmerge puts it back. The kept file's own sex and padró
-- registration win when it has them; otherwise the merged file's are copied (the merged file
-- keeps its own, for its unmerge). Benefit applications follow the person: they move.

-- The merged file's benefit applications (event_ref) the merge moved to the kept file
ALTER TABLE merges ADD COLUMN moved_benefits uuid[] NOT NULL DEFAULT '{}';
-- The sex the kept file took from the merged file (NULL: it took none)
ALTER TABLE merges ADD COLUMN taken_sex text;
-- The padró registration the kept file took from the merged file, named by the event that
-- registered it (persons.registered_by; NULL: it took none)
ALTER TABLE merges ADD COLUMN taken_registration uuid;
