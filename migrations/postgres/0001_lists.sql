-- The whole data model of the stelselnode (SPEC §4, §5, §7). Instants are TIMESTAMPTZ.

-- One row per list: the highest Volgnummer ever used (published or imported). Publication
-- locks this row, so replicas publishing at once are serialised in the database.
CREATE TABLE list_heads (
    list                TEXT PRIMARY KEY CHECK (list IN ('zal', 'ocl', 'gnl', 'whitelist')),
    last_volgnummer     BIGINT NOT NULL DEFAULT 0 CHECK (last_volgnummer >= 0),
    -- Grows with every change of the list's working state, so a publication can tell that
    -- the state it rendered is still the state to publish.
    revision            BIGINT NOT NULL DEFAULT 0,
    imported_volgnummer BIGINT CHECK (imported_volgnummer >= 1),
    imported_at         TIMESTAMPTZ
);
INSERT INTO list_heads (list) VALUES ('zal'), ('ocl'), ('gnl'), ('whitelist');

-- The working state: one row per entry ever known. `version` grows with every change and is
-- what optimistic concurrency compares; a NULL body is a tombstone (the entry was removed,
-- and for the GNL that id may never be reused: SPEC §4 rule 5).
CREATE TABLE entries (
    list       TEXT NOT NULL REFERENCES list_heads (list),
    entry_key  TEXT NOT NULL,
    version    BIGINT NOT NULL CHECK (version >= 1),
    body       JSONB,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (list, entry_key)
);

-- GegevensdienstIds once removed from the GNL: never to be reused (SPEC §4 rule 5).
CREATE TABLE retired_gegevensdienst_ids (
    gegevensdienst_id TEXT PRIMARY KEY,
    retired_at        TIMESTAMPTZ NOT NULL
);

-- Published documents are stored as a small per-version header (declaration, root, Tijdstempel,
-- Volgnummer) followed by a body shared by all versions with the same entries, so heartbeats
-- cost a header each. Bodies are compressed; `sha256` is of the uncompressed body.
CREATE TABLE version_bodies (
    sha256      TEXT PRIMARY KEY,
    size_bytes  BIGINT NOT NULL CHECK (size_bytes >= 0),
    compression TEXT NOT NULL CHECK (compression IN ('gzip')),
    compressed  BYTEA NOT NULL
);

CREATE TABLE versions (
    list            TEXT NOT NULL REFERENCES list_heads (list),
    volgnummer      BIGINT NOT NULL CHECK (volgnummer >= 1),
    tijdstempel     TIMESTAMPTZ NOT NULL,
    valid_from      TIMESTAMPTZ NOT NULL,
    expires_at      TIMESTAMPTZ NOT NULL,
    grace_seconds   BIGINT NOT NULL CHECK (grace_seconds >= 0),
    superseded_at   TIMESTAMPTZ,
    grace_until     TIMESTAMPTZ,
    header          BYTEA NOT NULL,
    body_sha256     TEXT NOT NULL REFERENCES version_bodies (sha256),
    sha256          TEXT NOT NULL,           -- of the whole published document
    size_bytes      BIGINT NOT NULL CHECK (size_bytes > 0),
    previous_sha256 TEXT,                    -- hash chain over the list's versions
    signature       BYTEA NOT NULL,          -- detached XML Signature document
    heartbeat       BOOLEAN NOT NULL DEFAULT FALSE,
    published_by    TEXT NOT NULL,
    PRIMARY KEY (list, volgnummer),
    CHECK (expires_at > valid_from),
    CHECK ((superseded_at IS NULL) = (grace_until IS NULL))
);
CREATE INDEX versions_by_grace ON versions (list, grace_until);

-- A published version never changes, except that it is marked superseded once.
CREATE FUNCTION versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.list, NEW.volgnummer, NEW.tijdstempel, NEW.valid_from, NEW.expires_at,
        NEW.grace_seconds, NEW.header, NEW.body_sha256, NEW.sha256, NEW.size_bytes, NEW.previous_sha256,
        NEW.signature, NEW.heartbeat, NEW.published_by)
       IS DISTINCT FROM
       (OLD.list, OLD.volgnummer, OLD.tijdstempel, OLD.valid_from, OLD.expires_at,
        OLD.grace_seconds, OLD.header, OLD.body_sha256, OLD.sha256, OLD.size_bytes, OLD.previous_sha256,
        OLD.signature, OLD.heartbeat, OLD.published_by)
       OR OLD.superseded_at IS NOT NULL THEN
        RAISE EXCEPTION 'published versions are immutable';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER versions_immutable BEFORE UPDATE ON versions
    FOR EACH ROW EXECUTE FUNCTION versions_immutable();

-- Change requests and their life cycle (SPEC §4).
CREATE TABLE mutations (
    id                   BIGSERIAL PRIMARY KEY,
    list                 TEXT NOT NULL REFERENCES list_heads (list),
    entry_key            TEXT NOT NULL,
    operation            TEXT NOT NULL CHECK (operation IN ('upsert', 'delete')),
    body                 JSONB,
    base_version         BIGINT NOT NULL CHECK (base_version >= 0),
    on_behalf_of         TEXT NOT NULL,
    reference            TEXT NOT NULL,
    urgent               BOOLEAN NOT NULL DEFAULT FALSE,
    agreed_deadline      TIMESTAMPTZ,
    effective_from       TIMESTAMPTZ,
    status               TEXT NOT NULL
        CHECK (status IN ('submitted', 'approved', 'published', 'rejected', 'withdrawn')),
    submitted_by         TEXT NOT NULL,      -- certificate SHA-256 fingerprint
    submitted_by_subject TEXT NOT NULL,
    submitted_at         TIMESTAMPTZ NOT NULL,
    decided_by           TEXT,
    decided_at           TIMESTAMPTZ,
    rejection_reason     TEXT,
    withdrawn_at         TIMESTAMPTZ,
    -- When the change reached the working state (at approval, or when effective_from came).
    applied_at           TIMESTAMPTZ,
    published_volgnummer BIGINT,
    published_at         TIMESTAMPTZ,
    CHECK ((operation = 'upsert') = (body IS NOT NULL)),
    CHECK (status <> 'published' OR (published_volgnummer IS NOT NULL AND published_at IS NOT NULL))
);
CREATE INDEX mutations_by_status ON mutations (status, submitted_at);
CREATE INDEX mutations_by_entry ON mutations (list, entry_key);

-- Who did what, when, on whose behalf, with what outcome (SPEC §7). Append-only: rows are
-- never updated; the retention job deletes rows older than the retention period.
CREATE TABLE audit_log (
    id                BIGSERIAL PRIMARY KEY,
    at                TIMESTAMPTZ NOT NULL,
    actor_subject     TEXT NOT NULL,
    actor_fingerprint TEXT,
    role              TEXT,
    action            TEXT NOT NULL,
    object            TEXT,
    on_behalf_of      TEXT,
    outcome           TEXT NOT NULL CHECK (outcome IN ('allowed', 'refused', 'failed')),
    reason            TEXT
);
CREATE INDEX audit_log_by_time ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log entries are never updated';
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
