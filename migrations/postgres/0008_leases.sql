-- Leases on singleton work (issue 24): the nightly archive, retention, the archive check, the
-- heartbeat's re-publication and the SLA rounds each run on the one replica holding their
-- lease. Instants are microseconds since 1970 by the database's own clock, so the replicas'
-- clocks never judge an expiry. The fence grows by one each time a lease changes hands.
-- Node-local: never exported in a bundle, not restored.
CREATE TABLE leases (
    name           TEXT PRIMARY KEY,
    holder         TEXT NOT NULL,
    fence          BIGINT NOT NULL,
    acquired_at_us BIGINT NOT NULL,
    expires_at_us  BIGINT NOT NULL
);
