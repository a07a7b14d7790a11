-- Retention (issue 14, seed 003 rules 20 and 21): a version's bytes are purged once its
-- validity ended longer ago than the archive retention; its record (Volgnummer, instants,
-- SHA-256, header and signature) stays, so the hash chain still verifies. A body shared by
-- several versions is purged with the last of them.

ALTER TABLE versions ADD COLUMN purged_at TIMESTAMPTZ;
ALTER TABLE version_bodies ADD COLUMN purged_at TIMESTAMPTZ;

-- Published versions stay immutable, except that a superseded one may be purged, once.
CREATE OR REPLACE FUNCTION versions_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.list, NEW.volgnummer, NEW.tijdstempel, NEW.valid_from, NEW.expires_at,
        NEW.grace_seconds, NEW.header, NEW.body_sha256, NEW.sha256, NEW.size_bytes, NEW.previous_sha256,
        NEW.signature, NEW.heartbeat, NEW.published_by)
       IS DISTINCT FROM
       (OLD.list, OLD.volgnummer, OLD.tijdstempel, OLD.valid_from, OLD.expires_at,
        OLD.grace_seconds, OLD.header, OLD.body_sha256, OLD.sha256, OLD.size_bytes, OLD.previous_sha256,
        OLD.signature, OLD.heartbeat, OLD.published_by)
       OR (OLD.superseded_at IS NOT NULL
           AND (NEW.superseded_at, NEW.grace_until) IS DISTINCT FROM (OLD.superseded_at, OLD.grace_until))
       OR OLD.purged_at IS NOT NULL
       OR (NEW.purged_at IS NOT NULL AND OLD.superseded_at IS NULL) THEN
        RAISE EXCEPTION 'published versions are immutable';
    END IF;
    RETURN NEW;
END $$;

CREATE INDEX versions_purgeable ON versions (expires_at) WHERE purged_at IS NULL;
