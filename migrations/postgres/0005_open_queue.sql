-- The work queue (issue 22): open mutations, the most urgent first, read a page at a time
-- however many decided mutations surround them.
CREATE INDEX mutations_open_by_deadline ON mutations (sla_deadline, id)
    WHERE status IN ('submitted', 'approved');
