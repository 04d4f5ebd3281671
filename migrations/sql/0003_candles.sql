-- Candles: open/high/low/close/volume/trade count per asset, interval and bucket, written by
-- the candle event function from the TRADES stream in batches (one upsert per bucket per
-- batch, never one row per trade). Every interval (1m, 5m, 15m, 30m, 1h, 4h, 1d, 1w) is kept
-- incrementally, so a query is one index range scan whatever the interval.
--
-- `bucket` is the bucket's start (UTC; weeks start on Monday). `first_trade_ms` and
-- `last_trade_ms` are the times of the trades that set `open` and `close`, so batches merge
-- in time order. `candle_progress` is the last TRADES stream sequence folded in, updated in
-- the same transaction: a redelivered trade is never counted twice.
CREATE TABLE candles (
    asset           TEXT        NOT NULL,
    interval_secs   INTEGER     NOT NULL,
    bucket          TIMESTAMPTZ NOT NULL,
    open            NUMERIC     NOT NULL,
    high            NUMERIC     NOT NULL,
    low             NUMERIC     NOT NULL,
    close           NUMERIC     NOT NULL,
    volume          NUMERIC     NOT NULL,
    trades          BIGINT      NOT NULL,
    first_trade_ms  BIGINT      NOT NULL,
    last_trade_ms   BIGINT      NOT NULL,
    PRIMARY KEY (asset, interval_secs, bucket)
);

CREATE TABLE candle_progress (
    stream    TEXT   PRIMARY KEY,
    last_seq  BIGINT NOT NULL
);

-- TimescaleDB, only where the extension is installed and preloaded (compose, cloud); plain
-- PostgreSQL skips this block and works the same. There `candles` becomes a hypertable in
-- 30-day chunks, chunks older than 30 days are compressed (segmented by asset and interval),
-- and chunks older than 5 years are dropped.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND current_setting('shared_preload_libraries', true) LIKE '%timescaledb%' THEN
        EXECUTE 'CREATE EXTENSION IF NOT EXISTS timescaledb';
        EXECUTE $q$SELECT create_hypertable('candles', 'bucket',
                    chunk_time_interval => INTERVAL '30 days', migrate_data => true)$q$;
        EXECUTE $q$ALTER TABLE candles SET (timescaledb.compress,
                    timescaledb.compress_segmentby = 'asset, interval_secs',
                    timescaledb.compress_orderby = 'bucket')$q$;
        EXECUTE $q$SELECT add_compression_policy('candles', INTERVAL '30 days')$q$;
        EXECUTE $q$SELECT add_retention_policy('candles', INTERVAL '5 years')$q$;
    END IF;
END
$$;
