-- The 2-werkdagen SLA (issue 13): each mutation's deadline and the calendar that computed
-- it, and once it completed, its outcome. Existing rows get their deadline from the node at
-- its next start (`sla::SlaService::settle_backlog`): werkdagen are counted in Rust, where
-- the calendar lives, not in SQL.

ALTER TABLE mutations ADD COLUMN sla_deadline TIMESTAMPTZ;
ALTER TABLE mutations ADD COLUMN sla_calendar TEXT;
ALTER TABLE mutations ADD COLUMN sla_outcome TEXT
    CHECK (sla_outcome IN ('met', 'breached', 'excluded'));
ALTER TABLE mutations ADD COLUMN sla_completed_at TIMESTAMPTZ;
-- Business time from the start of the SLA clock to publication (published mutations only).
ALTER TABLE mutations ADD COLUMN sla_werkdagen DOUBLE PRECISION;
ALTER TABLE mutations ADD COLUMN sla_excluded_reason TEXT;

-- What the node still has to compute: a deadline, or the outcome of a completed mutation.
CREATE INDEX mutations_sla_backlog ON mutations (id)
    WHERE sla_deadline IS NULL
       OR (sla_outcome IS NULL AND status IN ('published', 'rejected', 'withdrawn'));
CREATE INDEX mutations_by_sla_completion ON mutations (sla_completed_at)
    WHERE sla_completed_at IS NOT NULL;

-- Notifications of an expected breach (seed 001): one per mutation and channel, kept with
-- every delivery attempt's outcome so that a restart neither loses nor repeats one. The
-- channel 'log' is the structured log event, written by the node that queued the others.
CREATE TABLE sla_notifications (
    mutation_id     BIGINT NOT NULL REFERENCES mutations (id),
    channel         TEXT NOT NULL CHECK (channel IN ('log', 'webhook', 'email')),
    created_at      TIMESTAMPTZ NOT NULL,
    -- The deadline and time left the notification reports, as they were when it was due.
    deadline        TIMESTAMPTZ NOT NULL,
    werkdagen_left  DOUBLE PRECISION NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- Not tried again before this instant (backoff, or a replica's claim on it).
    next_attempt_at TIMESTAMPTZ NOT NULL,
    delivered_at    TIMESTAMPTZ,
    last_error      TEXT,
    PRIMARY KEY (mutation_id, channel)
);
CREATE INDEX sla_notifications_pending ON sla_notifications (next_attempt_at)
    WHERE delivered_at IS NULL;
