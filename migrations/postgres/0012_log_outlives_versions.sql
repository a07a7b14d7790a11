-- A leaf outlives its version's row (issue 26): a restore from bundles that no longer reach
-- back to the first one rebuilds the whole log from the oldest bundle's leaves, including
-- leaves of versions no bundle given still holds. The log is the history; the versions
-- table is what is kept of it.
ALTER TABLE log_leaves DROP CONSTRAINT log_leaves_list_volgnummer_fkey;
