//! The candle event function: a durable consumer of the `TRADES` stream that folds trades into
//! candles of every [`Interval`] and writes them in batches: up to `max_batch` trades or
//! `max_wait` of them become one transaction with one upsert per touched bucket (not one row
//! per trade). The transaction also advances `candle_progress` to the batch's last stream
//! sequence, and trades at or below it are skipped, so a redelivered batch is never counted
//! twice. With ack policy `All`, acking the batch's last message acks the whole batch.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use bus::trades::ensure_trades_stream;
use bus::{Asset, Envelope, Names, Trade};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use sqlx::PgPool;

use super::interval::Interval;
use crate::observe::WorkerMetrics;

/// The durable consumer's name.
pub const CONSUMER: &str = "candles";

/// One candle being built in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candle {
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub trades: i64,
    pub first_ms: i64,
    pub last_ms: i64,
}

impl Candle {
    fn new(t: &Trade) -> Self {
        let p = t.price.value();
        Self {
            open: p,
            high: p,
            low: p,
            close: p,
            volume: t.quantity.value(),
            trades: 1,
            first_ms: t.ts,
            last_ms: t.ts,
        }
    }

    /// Adds a trade that came later in the stream (ties in time: the later one closes).
    fn add(&mut self, t: &Trade) {
        let p = t.price.value();
        if t.ts < self.first_ms {
            self.open = p;
            self.first_ms = t.ts;
        }
        if t.ts >= self.last_ms {
            self.close = p;
            self.last_ms = t.ts;
        }
        self.high = self.high.max(p);
        self.low = self.low.min(p);
        self.volume += t.quantity.value();
        self.trades += 1;
    }
}

/// Candles of one batch, keyed by (asset, interval, bucket start in unix seconds).
pub type CandleMap = BTreeMap<(Asset, Interval, i64), Candle>;

/// Folds trades (in stream order) into candles of every interval.
pub fn aggregate<'a>(trades: impl IntoIterator<Item = &'a Trade>) -> CandleMap {
    let mut map = CandleMap::new();
    for t in trades {
        for interval in Interval::ALL {
            map.entry((t.asset, interval, interval.bucket_start(t.ts)))
                .and_modify(|c| c.add(t))
                .or_insert_with(|| Candle::new(t));
        }
    }
    map
}

/// Writes a batch of `(stream sequence, trade)` in one transaction; trades at or below the
/// stored progress of `stream` are skipped. Returns how many trades were folded in.
pub async fn write_batch(
    db: &PgPool,
    stream: &str,
    batch: &[(u64, Trade)],
) -> Result<usize, sqlx::Error> {
    let Some(last_seq) = batch.iter().map(|(s, _)| *s).max() else {
        return Ok(0);
    };
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO candle_progress (stream, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING",
    )
    .bind(stream)
    .execute(&mut *tx)
    .await?;
    let done: i64 =
        sqlx::query_scalar("SELECT last_seq FROM candle_progress WHERE stream = $1 FOR UPDATE")
            .bind(stream)
            .fetch_one(&mut *tx)
            .await?;
    let fresh: Vec<&Trade> = batch
        .iter()
        .filter(|(seq, _)| i64::try_from(*seq).is_ok_and(|s| s > done))
        .map(|(_, t)| t)
        .collect();
    upsert(&mut tx, &aggregate(fresh.iter().copied())).await?;
    sqlx::query("UPDATE candle_progress SET last_seq = GREATEST(last_seq, $2) WHERE stream = $1")
        .bind(stream)
        .bind(i64::try_from(last_seq).unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(fresh.len())
}

const UPSERT: &str = "
INSERT INTO candles AS c (asset, interval_secs, bucket, open, high, low, close, volume, trades,
                          first_trade_ms, last_trade_ms)
SELECT a, i, to_timestamp(b), o, h, l, cl, v, n, f, la
FROM UNNEST($1::text[], $2::int[], $3::bigint[], $4::numeric[], $5::numeric[], $6::numeric[],
            $7::numeric[], $8::numeric[], $9::bigint[], $10::bigint[], $11::bigint[])
     AS t(a, i, b, o, h, l, cl, v, n, f, la)
ON CONFLICT (asset, interval_secs, bucket) DO UPDATE SET
    open = CASE WHEN EXCLUDED.first_trade_ms < c.first_trade_ms THEN EXCLUDED.open ELSE c.open END,
    close = CASE WHEN EXCLUDED.last_trade_ms >= c.last_trade_ms THEN EXCLUDED.close ELSE c.close END,
    first_trade_ms = LEAST(c.first_trade_ms, EXCLUDED.first_trade_ms),
    last_trade_ms = GREATEST(c.last_trade_ms, EXCLUDED.last_trade_ms),
    high = GREATEST(c.high, EXCLUDED.high),
    low = LEAST(c.low, EXCLUDED.low),
    volume = c.volume + EXCLUDED.volume,
    trades = c.trades + EXCLUDED.trades";

async fn upsert(tx: &mut sqlx::PgConnection, candles: &CandleMap) -> Result<(), sqlx::Error> {
    if candles.is_empty() {
        return Ok(());
    }
    let n = candles.len();
    let (mut assets, mut secs, mut buckets) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut open, mut high, mut low, mut close, mut volume) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut count, mut first, mut last) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for ((asset, interval, bucket), c) in candles {
        assets.push(asset.symbol());
        secs.push(interval.secs() as i32); // at most 604,800
        buckets.push(*bucket);
        open.push(c.open);
        high.push(c.high);
        low.push(c.low);
        close.push(c.close);
        volume.push(c.volume);
        count.push(c.trades);
        first.push(c.first_ms);
        last.push(c.last_ms);
    }
    sqlx::query(UPSERT)
        .bind(assets)
        .bind(secs)
        .bind(buckets)
        .bind(open)
        .bind(high)
        .bind(low)
        .bind(close)
        .bind(volume)
        .bind(count)
        .bind(first)
        .bind(last)
        .execute(tx)
        .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("consumer: {0}")]
    Consumer(String),
}

/// Batching limits of the consumer.
#[derive(Debug, Clone, Copy)]
pub struct IngestSettings {
    pub max_batch: usize,
    pub max_wait: Duration,
    pub trades_max_age: Duration,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            max_batch: 5_000,
            max_wait: Duration::from_millis(250),
            trades_max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Consumes `TRADES` until `shutdown` resolves (creating the stream and the durable consumer
/// when missing). A failed write is retried with the same batch.
pub async fn run(
    js: jetstream::Context,
    names: Names,
    db: PgPool,
    settings: IngestSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), IngestError> {
    let err = |e: &dyn std::fmt::Display| IngestError::Consumer(e.to_string());
    ensure_trades_stream(&js, &names, settings.trades_max_age)
        .await
        .map_err(|e| err(&e))?;
    let stream_name = names.trades_stream();
    let stream = js.get_stream(&stream_name).await.map_err(|e| err(&e))?;
    let config = pull::Config {
        durable_name: Some(CONSUMER.into()),
        ack_policy: jetstream::consumer::AckPolicy::All,
        ack_wait: Duration::from_secs(30),
        max_ack_pending: (settings.max_batch * 4) as i64,
        ..Default::default()
    };
    let consumer = stream
        .get_or_create_consumer(CONSUMER, config)
        .await
        .map_err(|e| err(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| err(&e))?;
    let metrics = WorkerMetrics::new("candles");
    tokio::pin!(shutdown);
    loop {
        // Wait for the first trade of a batch, then gather more for at most `max_wait`.
        let first = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = messages.next() => next,
        };
        let mut batch = Vec::new();
        push(&mut batch, first)?;
        let deadline = tokio::time::Instant::now() + settings.max_wait;
        while batch.len() < settings.max_batch {
            match tokio::time::timeout_at(deadline, messages.next()).await {
                Ok(next) => push(&mut batch, next)?,
                Err(_) => break,
            }
        }
        commit(&db, &stream_name, batch, &metrics).await;
    }
}

type Delivered = (u64, Option<Trade>, jetstream::Message);

fn push(
    batch: &mut Vec<Delivered>,
    next: Option<Result<jetstream::Message, jetstream::consumer::pull::MessagesError>>,
) -> Result<(), IngestError> {
    match next {
        None => Err(IngestError::Consumer("the trade stream ended".into())),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "candles: receiving a trade failed");
            Ok(())
        }
        Some(Ok(msg)) => {
            let seq = msg.info().map(|i| i.stream_sequence).unwrap_or(0);
            let trade = match Envelope::<Trade>::decode(&msg.payload) {
                Ok(env) => Some(env.body),
                Err(e) => {
                    tracing::error!(error = %e, seq, "candles: unreadable trade skipped");
                    None
                }
            };
            batch.push((seq, trade, msg));
            Ok(())
        }
    }
}

/// Writes a batch (a few tries), then acks its last message (policy `All`). A batch that
/// cannot be written is not acked: JetStream redelivers it after the ack wait.
async fn commit(db: &PgPool, stream: &str, batch: Vec<Delivered>, metrics: &WorkerMetrics) {
    let trades: Vec<(u64, Trade)> = batch
        .iter()
        .filter_map(|(seq, t, _)| t.clone().map(|t| (*seq, t)))
        .collect();
    metrics.batch(batch.len(), batch.last().map(|(_, _, m)| m));
    // Unreadable trades are skipped for good (logged in `push`): this consumer's dead letters.
    metrics.dead_lettered(batch.len() - trades.len());
    let mut delay = Duration::from_millis(100);
    for attempt in 1.. {
        match write_batch(db, stream, &trades).await {
            Ok(_) => {
                metrics.written(trades.len());
                break;
            }
            Err(e) if attempt < 5 => {
                tracing::warn!(error = %e, attempt, "candles: write failed, retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            Err(e) => {
                tracing::error!(error = %e, "candles: batch left for redelivery");
                return;
            }
        }
    }
    if let Some((_, _, last)) = batch.last()
        && let Err(e) = last.ack().await
    {
        tracing::warn!(error = %e, "candles: ack failed (the batch will be redelivered, and skipped)");
    }
}
