-- Pending orders, partial closes and trailing stops (written by the persist event function).
--
-- `orders`: the latest state of each pending order, like `positions` (the event key
-- `event_seq`/`event_index` guards against older events overwriting newer state). A filled
-- order names the position it opened; a cancelled one its reason.
CREATE TABLE orders (
    id             BIGINT      PRIMARY KEY,
    user_id        UUID        NOT NULL,
    asset          TEXT        NOT NULL,
    side           TEXT        NOT NULL,
    order_type     TEXT        NOT NULL CHECK (order_type IN ('limit', 'stop')),
    price          NUMERIC     NOT NULL,
    quantity       NUMERIC     NOT NULL,
    leverage       INTEGER     NOT NULL,
    stop_loss      NUMERIC,
    take_profit    NUMERIC,
    expires_at     BIGINT,
    created_at     BIGINT      NOT NULL,
    status         TEXT        NOT NULL CHECK (status IN ('pending', 'filled', 'cancelled')),
    cancel_reason  TEXT        CHECK (cancel_reason IN ('user', 'expired', 'insufficient_margin')),
    position_id    BIGINT,
    -- When it was filled or cancelled.
    finished_at    BIGINT,
    event_seq      BIGINT      NOT NULL,
    event_index    INTEGER     NOT NULL
);
-- The order history: one user's finished orders, newest first, keyset-paginated on
-- (finished_at, id).
CREATE INDEX orders_finished_by_user ON orders (user_id, finished_at DESC, id DESC)
    WHERE status <> 'pending';

-- A position's trailing stop distance (its current level is `stop_loss`).
ALTER TABLE positions ADD COLUMN trailing_distance NUMERIC;

-- One row per partial close of a position: the closed part (its quantity, the margin it
-- released, its realised PnL). The position's row in `positions` keeps what stays open; its
-- final close is the position's own closed row. Keyed by the event that wrote it.
CREATE TABLE position_partial_closes (
    event_seq      BIGINT      NOT NULL,
    event_index    INTEGER     NOT NULL,
    position_id    BIGINT      NOT NULL,
    user_id        UUID        NOT NULL,
    asset          TEXT        NOT NULL,
    side           TEXT        NOT NULL,
    quantity       NUMERIC     NOT NULL,
    leverage       INTEGER     NOT NULL,
    open_price     NUMERIC     NOT NULL,
    margin         NUMERIC     NOT NULL,
    opened_at      BIGINT      NOT NULL,
    close_price    NUMERIC     NOT NULL,
    realized_pnl   NUMERIC     NOT NULL,
    close_reason   TEXT        NOT NULL,
    closed_at      BIGINT      NOT NULL,
    PRIMARY KEY (event_seq, event_index)
);
CREATE INDEX position_partial_closes_by_user
    ON position_partial_closes (user_id, closed_at DESC, position_id DESC);

-- Every realised trade (a full close or a partial one): what history and analytics read.
CREATE VIEW closed_trades AS
    SELECT user_id, id AS position_id, asset, side, quantity, leverage, open_price, margin,
           opened_at, close_price, realized_pnl, close_reason, closed_at, FALSE AS partial
      FROM positions
     WHERE status = 'closed'
    UNION ALL
    SELECT user_id, position_id, asset, side, quantity, leverage, open_price, margin,
           opened_at, close_price, realized_pnl, close_reason, closed_at, TRUE AS partial
      FROM position_partial_closes;
