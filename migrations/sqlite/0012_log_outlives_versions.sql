-- A leaf outlives its version's row (issue 26): a restore from bundles that no longer reach
-- back to the first one rebuilds the whole log from the oldest bundle's leaves, including
-- leaves of versions no bundle given still holds. The log is the history; the versions
-- table is what is kept of it.
-- SQLite drops a constraint by copying the table; the implicit DELETE of DROP TABLE fires no
-- trigger, and the append-only triggers are made again on the copy.
CREATE TABLE log_leaves_kept (
    leaf_index INTEGER PRIMARY KEY CHECK (leaf_index >= 0),
    list       TEXT NOT NULL,
    volgnummer INTEGER NOT NULL,
    leaf       BLOB NOT NULL,
    UNIQUE (list, volgnummer)
) STRICT;
INSERT INTO log_leaves_kept (leaf_index, list, volgnummer, leaf)
    SELECT leaf_index, list, volgnummer, leaf FROM log_leaves ORDER BY leaf_index;
DROP TABLE log_leaves;
ALTER TABLE log_leaves_kept RENAME TO log_leaves;

CREATE TRIGGER log_leaves_never_updated BEFORE UPDATE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'transparency log leaves are never changed');
END;
CREATE TRIGGER log_leaves_never_deleted BEFORE DELETE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'transparency log leaves are never changed');
END;
