-- Disaster recovery (issue 23). A restore from archive bundles raises each list's numbering
-- past every Volgnummer that may have been published after the last recovered version, so
-- no node ever sees a Volgnummer again with other content. The record of that jump is kept
-- (and exported in every bundle's working state) so that the chain checks accept exactly
-- that gap and no other.
CREATE TABLE restores (
    list             TEXT NOT NULL REFERENCES list_heads (list),
    at               INTEGER NOT NULL,
    -- The last version recovered (0: none) and its SHA-256.
    after_volgnummer INTEGER NOT NULL CHECK (after_volgnummer >= 0),
    after_sha256     TEXT,
    -- The Volgnummer the restored node publishes next.
    next_volgnummer  INTEGER NOT NULL CHECK (next_volgnummer > after_volgnummer + 1),
    -- Nothing published, decided or audited after this instant was in the bundles.
    -- Node-local, not exported: publish the list past the gap before serving it (unless the
    -- operator knew the versions recovered were the newest any consumer held).
    republish        INTEGER NOT NULL DEFAULT 1 CHECK (republish IN (0, 1)),
    recovered_up_to  INTEGER NOT NULL,
    PRIMARY KEY (list, next_volgnummer)
) STRICT;

-- Present while a restore is under way: a node refuses to start on a half-restored database.
CREATE TABLE restore_in_progress (
    started_at INTEGER NOT NULL
) STRICT;
