-- The transparency log (issue 26): one leaf per published version (heartbeats included), in
-- publication order, appended in the transaction that stores the version. The leaf is the
-- canonical text of `domain::LogLeaf`; every hash of the Merkle tree derives from the leaves.
-- Append-only: a leaf is never updated or deleted, so every checkpoint the node signs is
-- consistent with every earlier one.
CREATE TABLE log_leaves (
    leaf_index INTEGER PRIMARY KEY CHECK (leaf_index >= 0),
    list       TEXT NOT NULL,
    volgnummer INTEGER NOT NULL,
    leaf       BLOB NOT NULL,
    UNIQUE (list, volgnummer),
    FOREIGN KEY (list, volgnummer) REFERENCES versions (list, volgnummer)
) STRICT;

CREATE TRIGGER log_leaves_never_updated BEFORE UPDATE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'transparency log leaves are never changed');
END;
CREATE TRIGGER log_leaves_never_deleted BEFORE DELETE ON log_leaves
BEGIN
    SELECT RAISE(ABORT, 'transparency log leaves are never changed');
END;
