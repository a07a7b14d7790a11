-- The transparency log (issue 26): one leaf per published version (heartbeats included), in
-- publication order, appended in the transaction that stores the version. The leaf is the
-- canonical text of `domain::LogLeaf`; every hash of the Merkle tree derives from the leaves.
-- Append-only: a leaf is never updated or deleted, so every checkpoint the node signs is
-- consistent with every earlier one.
CREATE TABLE log_leaves (
    leaf_index BIGINT PRIMARY KEY CHECK (leaf_index >= 0),
    list       TEXT NOT NULL,
    volgnummer BIGINT NOT NULL,
    leaf       BYTEA NOT NULL,
    UNIQUE (list, volgnummer),
    FOREIGN KEY (list, volgnummer) REFERENCES versions (list, volgnummer)
);

CREATE FUNCTION log_leaves_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transparency log leaves are never changed';
END $$;
CREATE TRIGGER log_leaves_append_only BEFORE UPDATE OR DELETE ON log_leaves
    FOR EACH ROW EXECUTE FUNCTION log_leaves_append_only();
