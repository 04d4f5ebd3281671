//! Candle benchmarks (run by hand, in release): `cargo bench -p functions --bench candles`.
//!
//! 1. Ingest: `TRADES` trades (default 200,000, three assets) published into a real `TRADES`
//!    stream, then consumed by the candle event function into a fresh database; trades per
//!    second from consumer start until the last one is committed. Also `write_batch` alone
//!    (no NATS) on the same trades.
//! 2. Queries with a year of candles in the table (every interval, filled with SQL): 1,440
//!    1m candles and a year of 1d candles, each run 200 times; p50 / p99 / max.

use std::time::{Duration, Instant};

use bus::{Asset, Names, Price, Quantity, Trade};
use functions::candles::ingest::{self, IngestSettings};
use functions::candles::{CandleQuery, Interval, fetch};
use migrations::TestDatabase;
use rust_decimal::Decimal;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

fn trades(n: u64, start_ms: i64) -> Vec<Trade> {
    (0..n)
        .map(|i| {
            let asset = Asset::ALL[(i % 3) as usize];
            Trade {
                asset,
                // Around 65,000 with some movement; 150 trades per second overall.
                price: Price::new(Decimal::new(6_500_000 + (i % 997) as i64, 2)).expect("price"),
                quantity: Quantity::new(Decimal::new(1 + (i % 50) as i64, 3)).expect("qty"),
                ts: start_ms + (i as i64 * 1000) / 150,
                id: i,
                simulated: true,
            }
        })
        .collect()
}

async fn progress(db: &sqlx::PgPool, stream: &str) -> Res<i64> {
    Ok(
        sqlx::query_scalar("SELECT last_seq FROM candle_progress WHERE stream = $1")
            .bind(stream)
            .fetch_optional(db)
            .await?
            .unwrap_or(0),
    )
}

async fn bench_ingest(n: u64) -> Res<()> {
    let db = TestDatabase::create().await?;
    let names = Names::new(format!(
        "bench{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    ));
    let nats_url = std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let js = async_nats::jetstream::new(async_nats::connect(&nats_url).await?);
    bus::trades::ensure_trades_stream(&js, &names, Duration::from_secs(3600)).await?;
    let all = trades(n, 1_700_000_000_000);
    let t = Instant::now();
    for chunk in all.chunks(1000) {
        let mut acks = Vec::with_capacity(chunk.len());
        for trade in chunk {
            let payload = bus::Envelope::new(0, 0, trade.clone()).encode();
            acks.push(js.publish(names.trade(trade.asset), payload.into()).await?);
        }
        for ack in acks {
            ack.await?;
        }
    }
    println!(
        "published {n} trades into TRADES in {:.2} s",
        t.elapsed().as_secs_f64()
    );

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (db2, names2) = (db.pool.clone(), names.clone());
    let t = Instant::now();
    let consumer = tokio::spawn(async move {
        ingest::run(js, names2, db2, IngestSettings::default(), async {
            let _ = stopped.await;
        })
        .await
    });
    let stream = names.trades_stream();
    while progress(&db.pool, &stream).await? < n as i64 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "consumer: {n} trades into candles in {secs:.2} s = {:.0} trades/s",
        n as f64 / secs
    );
    let _ = stop.send(());
    consumer.await??;
    let cleanup = async_nats::jetstream::new(async_nats::connect(&nats_url).await?);
    let _ = cleanup.delete_stream(&stream).await;

    let fresh = TestDatabase::create().await?;
    let batch: Vec<(u64, Trade)> = all
        .into_iter()
        .enumerate()
        .map(|(i, t)| (i as u64 + 1, t))
        .collect();
    let t = Instant::now();
    for chunk in batch.chunks(5000) {
        ingest::write_batch(&fresh.pool, "bench", chunk).await?;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "write_batch alone (5,000 per batch): {:.0} trades/s",
        n as f64 / secs
    );
    Ok(())
}

/// A year of candles of every interval for BTC, ending at `end` (unix seconds, a week start).
async fn fill_year(db: &sqlx::PgPool, end: i64) -> Res<()> {
    let start = end - 365 * 86_400;
    for interval in Interval::ALL {
        let secs = interval.secs();
        let first = interval.bucket_start(start * 1000);
        sqlx::query(
            "INSERT INTO candles (asset, interval_secs, bucket, open, high, low, close, volume, \
             trades, first_trade_ms, last_trade_ms) \
             SELECT 'BTC', $1, to_timestamp(b), 65000 + (b % 1000), 65100 + (b % 1000), \
                    64900 + (b % 1000), 65050 + (b % 1000), 12.5, 100, b * 1000, b * 1000 + 1 \
             FROM generate_series($2::bigint, $3::bigint, $1::bigint) AS b",
        )
        .bind(secs as i32)
        .bind(first)
        .bind(end - secs)
        .execute(db)
        .await?;
    }
    sqlx::query("ANALYZE candles").execute(db).await?;
    Ok(())
}

async fn time_query(db: &sqlx::PgPool, q: &CandleQuery, label: &str) -> Res<()> {
    let mut times = Vec::with_capacity(200);
    let mut rows = 0;
    for _ in 0..200 {
        let t = Instant::now();
        rows = fetch(db, q).await?.len();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label}: {rows} candles, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(times[100]),
        ms(times[197]),
        ms(times[199])
    );
    Ok(())
}

async fn bench_queries() -> Res<()> {
    let db = TestDatabase::create().await?;
    let end = Interval::W1.bucket_start(1_700_000_000_000);
    let t = Instant::now();
    fill_year(&db.pool, end).await?;
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM candles")
        .fetch_one(&db.pool)
        .await?;
    println!(
        "filled {count} candle rows (a year of BTC, every interval) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let day = CandleQuery {
        asset: Asset::Btc,
        interval: Interval::M1,
        from: Some(end - 86_400),
        to: end,
        limit: 1500,
    };
    time_query(&db.pool, &day, "1,440 x 1m (one day, with from)").await?;
    let newest = CandleQuery {
        from: None,
        limit: 1440,
        ..day.clone()
    };
    time_query(&db.pool, &newest, "newest 1,440 x 1m (no from)").await?;
    let year = CandleQuery {
        interval: Interval::D1,
        from: Some(end - 365 * 86_400),
        limit: 1500,
        ..day
    };
    time_query(&db.pool, &year, "a year of 1d").await?;
    Ok(())
}

fn main() -> Res<()> {
    let n = std::env::var("TRADES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        bench_ingest(n).await?;
        bench_queries().await
    })
}
