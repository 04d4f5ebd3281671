-- Users (written by signup) and their positions (written by the persist event function from
-- the EVENTS stream). A position row is the latest state of one engine position; `event_seq`
-- and `event_index` are the key of the event that wrote it (ENGINE sequence, index within the
-- input's events), so replayed or reordered events never overwrite newer state.
CREATE TABLE users (
    id             UUID        PRIMARY KEY,
    email          TEXT        NOT NULL UNIQUE,
    password_hash  TEXT        NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE positions (
    id                 BIGINT      PRIMARY KEY,
    user_id            UUID        NOT NULL,
    asset              TEXT        NOT NULL,
    side               TEXT        NOT NULL,
    quantity           NUMERIC     NOT NULL,
    leverage           INTEGER     NOT NULL,
    open_price         NUMERIC     NOT NULL,
    margin             NUMERIC     NOT NULL,
    liquidation_price  NUMERIC,
    stop_loss          NUMERIC,
    take_profit        NUMERIC,
    opened_at          BIGINT      NOT NULL,
    status             TEXT        NOT NULL CHECK (status IN ('open', 'closed')),
    close_price        NUMERIC,
    realized_pnl       NUMERIC,
    close_reason       TEXT,
    closed_at          BIGINT,
    absorbed_loss      NUMERIC,
    event_seq          BIGINT      NOT NULL,
    event_index        INTEGER     NOT NULL
);
-- The closed-positions history: one user's, newest first, keyset-paginated on (closed_at, id).
CREATE INDEX positions_closed_by_user ON positions (user_id, closed_at DESC, id DESC)
    WHERE status = 'closed';
