-- Price alerts (issue 13): written by `POST /api/v1/alerts` and `/alerts/cancel`, fired by the
-- alerts worker. An alert fires once: the worker moves it from 'active' to 'triggered' with
-- `UPDATE ... WHERE status = 'active'`, recording the quote that fired it, and then delivers
-- it; `delivered` is the outbox flag that makes delivery survive a crash between the two.
-- `changed_at` (ms, set on create and cancel) lets the worker pick up what it missed.
CREATE TABLE alerts (
    id               BIGSERIAL   PRIMARY KEY,
    user_id          UUID        NOT NULL REFERENCES users (id),
    asset            TEXT        NOT NULL,
    direction        TEXT        NOT NULL CHECK (direction IN ('above', 'below')),
    price            NUMERIC     NOT NULL CHECK (price > 0),
    status           TEXT        NOT NULL CHECK (status IN ('active', 'triggered', 'cancelled')),
    created_at       BIGINT      NOT NULL,
    changed_at       BIGINT      NOT NULL,
    triggered_at     BIGINT,
    triggered_price  NUMERIC,
    delivered        BOOLEAN     NOT NULL DEFAULT false,
    -- The request's Idempotency-Key (scoped to the user, hashed) and what it asked for.
    idempotency_key  TEXT,
    request_hash     TEXT
);
-- A user's alerts, newest first.
CREATE INDEX alerts_by_user ON alerts (user_id, id DESC);
-- The worker's start-up load and the per-user limit count.
CREATE INDEX alerts_active ON alerts (user_id) WHERE status = 'active';
-- The worker's catch-up of recent creates and cancels.
CREATE INDEX alerts_changed ON alerts (changed_at);
-- The outbox: fired but not yet delivered.
CREATE INDEX alerts_undelivered ON alerts (id) WHERE status = 'triggered' AND NOT delivered;
CREATE UNIQUE INDEX alerts_idempotency ON alerts (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
