-- An order that fills while its account has the most open positions allowed is cancelled
-- with reason `too_many_positions` (engine per-account limits).
ALTER TABLE orders DROP CONSTRAINT orders_cancel_reason_check;
ALTER TABLE orders ADD CONSTRAINT orders_cancel_reason_check
    CHECK (cancel_reason IN ('user', 'expired', 'insufficient_margin', 'too_many_positions'));
