-- Secrets every replica of the node must share (issue 24): the web forms' CSRF key, so a form
-- opened on one replica is accepted by another behind a load balancer without affinity. Made
-- once by the first replica that needs one; never exported in a bundle.
CREATE TABLE node_secrets (
    name       TEXT PRIMARY KEY,
    secret     BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
