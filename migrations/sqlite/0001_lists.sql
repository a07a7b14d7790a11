-- The whole data model of the stelselnode (SPEC §4, §5, §7), as in migrations/postgres.
-- Instants are INTEGER microseconds since the Unix epoch (UTC), so they compare as numbers.

CREATE TABLE list_heads (
    list                TEXT PRIMARY KEY CHECK (list IN ('zal', 'ocl', 'gnl', 'whitelist')),
    last_volgnummer     INTEGER NOT NULL DEFAULT 0 CHECK (last_volgnummer >= 0),
    -- Grows with every change of the list's working state, so a publication can tell that
    -- the state it rendered is still the state to publish.
    revision            INTEGER NOT NULL DEFAULT 0,
    imported_volgnummer INTEGER CHECK (imported_volgnummer >= 1),
    imported_at         INTEGER
) STRICT;
INSERT INTO list_heads (list) VALUES ('zal'), ('ocl'), ('gnl'), ('whitelist');

CREATE TABLE entries (
    list       TEXT NOT NULL REFERENCES list_heads (list),
    entry_key  TEXT NOT NULL,
    version    INTEGER NOT NULL CHECK (version >= 1),
    body       TEXT CHECK (body IS NULL OR json_valid(body)),
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (list, entry_key)
) STRICT;

CREATE TABLE retired_gegevensdienst_ids (
    gegevensdienst_id TEXT PRIMARY KEY,
    retired_at        INTEGER NOT NULL
) STRICT;

CREATE TABLE version_bodies (
    sha256      TEXT PRIMARY KEY,
    size_bytes  INTEGER NOT NULL CHECK (size_bytes >= 0),
    compression TEXT NOT NULL CHECK (compression IN ('gzip')),
    compressed  BLOB NOT NULL
) STRICT;

CREATE TABLE versions (
    list            TEXT NOT NULL REFERENCES list_heads (list),
    volgnummer      INTEGER NOT NULL CHECK (volgnummer >= 1),
    tijdstempel     INTEGER NOT NULL,
    valid_from      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    grace_seconds   INTEGER NOT NULL CHECK (grace_seconds >= 0),
    superseded_at   INTEGER,
    grace_until     INTEGER,
    header          BLOB NOT NULL,
    body_sha256     TEXT NOT NULL REFERENCES version_bodies (sha256),
    sha256          TEXT NOT NULL,
    size_bytes      INTEGER NOT NULL CHECK (size_bytes > 0),
    previous_sha256 TEXT,
    signature       BLOB NOT NULL,
    heartbeat       INTEGER NOT NULL DEFAULT 0 CHECK (heartbeat IN (0, 1)),
    published_by    TEXT NOT NULL,
    PRIMARY KEY (list, volgnummer),
    CHECK (expires_at > valid_from),
    CHECK ((superseded_at IS NULL) = (grace_until IS NULL))
) STRICT;
CREATE INDEX versions_by_grace ON versions (list, grace_until);

CREATE TRIGGER versions_immutable BEFORE UPDATE ON versions
WHEN NEW.list IS NOT OLD.list OR NEW.volgnummer IS NOT OLD.volgnummer
  OR NEW.tijdstempel IS NOT OLD.tijdstempel OR NEW.valid_from IS NOT OLD.valid_from
  OR NEW.expires_at IS NOT OLD.expires_at OR NEW.grace_seconds IS NOT OLD.grace_seconds
  OR NEW.header IS NOT OLD.header OR NEW.body_sha256 IS NOT OLD.body_sha256
  OR NEW.sha256 IS NOT OLD.sha256 OR NEW.size_bytes IS NOT OLD.size_bytes OR NEW.previous_sha256 IS NOT OLD.previous_sha256
  OR NEW.signature IS NOT OLD.signature OR NEW.heartbeat IS NOT OLD.heartbeat
  OR NEW.published_by IS NOT OLD.published_by OR OLD.superseded_at IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'published versions are immutable');
END;

CREATE TABLE mutations (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,
    list                 TEXT NOT NULL REFERENCES list_heads (list),
    entry_key            TEXT NOT NULL,
    operation            TEXT NOT NULL CHECK (operation IN ('upsert', 'delete')),
    body                 TEXT CHECK (body IS NULL OR json_valid(body)),
    base_version         INTEGER NOT NULL CHECK (base_version >= 0),
    on_behalf_of         TEXT NOT NULL,
    reference            TEXT NOT NULL,
    urgent               INTEGER NOT NULL DEFAULT 0 CHECK (urgent IN (0, 1)),
    agreed_deadline      INTEGER,
    effective_from       INTEGER,
    status               TEXT NOT NULL
        CHECK (status IN ('submitted', 'approved', 'published', 'rejected', 'withdrawn')),
    submitted_by         TEXT NOT NULL,
    submitted_by_subject TEXT NOT NULL,
    submitted_at         INTEGER NOT NULL,
    decided_by           TEXT,
    decided_at           INTEGER,
    rejection_reason     TEXT,
    withdrawn_at         INTEGER,
    -- When the change reached the working state (at approval, or when effective_from came).
    applied_at           INTEGER,
    published_volgnummer INTEGER,
    published_at         INTEGER,
    CHECK ((operation = 'upsert') = (body IS NOT NULL)),
    CHECK (status <> 'published' OR (published_volgnummer IS NOT NULL AND published_at IS NOT NULL))
) STRICT;
CREATE INDEX mutations_by_status ON mutations (status, submitted_at);
CREATE INDEX mutations_by_entry ON mutations (list, entry_key);

CREATE TABLE audit_log (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at                INTEGER NOT NULL,
    actor_subject     TEXT NOT NULL,
    actor_fingerprint TEXT,
    role              TEXT,
    action            TEXT NOT NULL,
    object            TEXT,
    on_behalf_of      TEXT,
    outcome           TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
    reason            TEXT
) STRICT;
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit log entries are never updated');
END;
