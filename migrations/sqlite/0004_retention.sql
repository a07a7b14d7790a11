-- Retention (issue 14, seed 003 rules 20 and 21): a version's bytes are purged once its
-- validity ended longer ago than the archive retention; its record (Volgnummer, instants,
-- SHA-256, header and signature) stays, so the hash chain still verifies. A body shared by
-- several versions is purged with the last of them.

ALTER TABLE versions ADD COLUMN purged_at INTEGER;
ALTER TABLE version_bodies ADD COLUMN purged_at INTEGER;

-- Published versions stay immutable, except that a superseded one may be purged, once.
DROP TRIGGER versions_immutable;
CREATE TRIGGER versions_immutable BEFORE UPDATE ON versions
WHEN NEW.list IS NOT OLD.list OR NEW.volgnummer IS NOT OLD.volgnummer
  OR NEW.tijdstempel IS NOT OLD.tijdstempel OR NEW.valid_from IS NOT OLD.valid_from
  OR NEW.expires_at IS NOT OLD.expires_at OR NEW.grace_seconds IS NOT OLD.grace_seconds
  OR NEW.header IS NOT OLD.header OR NEW.body_sha256 IS NOT OLD.body_sha256
  OR NEW.sha256 IS NOT OLD.sha256 OR NEW.size_bytes IS NOT OLD.size_bytes OR NEW.previous_sha256 IS NOT OLD.previous_sha256
  OR NEW.signature IS NOT OLD.signature OR NEW.heartbeat IS NOT OLD.heartbeat
  OR NEW.published_by IS NOT OLD.published_by
  OR (OLD.superseded_at IS NOT NULL
      AND (NEW.superseded_at IS NOT OLD.superseded_at OR NEW.grace_until IS NOT OLD.grace_until))
  OR OLD.purged_at IS NOT NULL
  OR (NEW.purged_at IS NOT NULL AND OLD.superseded_at IS NULL)
BEGIN
    SELECT RAISE(ABORT, 'published versions are immutable');
END;

CREATE INDEX versions_purgeable ON versions (expires_at) WHERE purged_at IS NULL;
