-- The largest tree of the transparency log any node has checked (issue 26): its size and
-- root. A node that finds its tree disagreeing with it (leaves edited or lost behind the
-- node's back, a database restored from an older copy) signs no checkpoint: it never signs
-- two that are not consistent. One row; the size only grows.
CREATE TABLE log_head (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    tree_size INTEGER NOT NULL CHECK (tree_size >= 0),
    root_hash TEXT NOT NULL
) STRICT;
INSERT INTO log_head (id, tree_size, root_hash)
    VALUES (1, 0, '47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=');
