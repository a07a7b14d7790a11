-- The working-state revision each list's current version was published from (issue 25): when
-- it is still the working state's revision, the working state is that version's content, and
-- a publication (a heartbeat from the CLI above all) need not parse the stored version to
-- know what is published. NULL where unknown (versions published before this column, a
-- restore): the stored version is parsed, as before.
ALTER TABLE list_heads ADD COLUMN published_revision BIGINT;
