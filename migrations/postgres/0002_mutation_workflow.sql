-- The mutation workflow over HTTP (issue 5): who decided, one open mutation per entry, and
-- the indexes the list and audit filters use.

ALTER TABLE mutations ADD COLUMN decided_by_subject TEXT;

-- A mutation is "open" while it waits for a decision or for its effective_from. Only one per
-- entry: the next change is based on what the open one leaves. Enforced here so that two
-- concurrent submissions cannot both pass.
CREATE UNIQUE INDEX mutations_one_open_per_entry ON mutations (list, entry_key)
    WHERE status = 'submitted' OR (status = 'approved' AND applied_at IS NULL);

CREATE INDEX mutations_by_submitted_at ON mutations (submitted_at);
CREATE INDEX mutations_unpublished ON mutations (list)
    WHERE status = 'approved' AND applied_at IS NOT NULL;
CREATE INDEX audit_log_by_actor ON audit_log (actor_subject, at);
