//! The alerts worker's per-quote cost (run by hand, in release): `cargo bench -p functions
//! --bench alerts`. The ordered index (`functions::alerts::index`) with 0 (the floor: the
//! least a quote can cost), 1,000 and 1,000,000 active alerts spread over the three assets and
//! both directions, levels 5-15% away from the price; then quotes that wander inside the band
//! and fire none, and a quote that fires exactly one (which is armed again, untimed cost
//! included). Median of 7 rounds of `QUOTES` quotes each, ns per quote.
//!
//! Then the worker's start-up load: 1,000,000 active alerts of 20,000 users in a fresh
//! PostgreSQL database (`DATABASE_URL`'s server), streamed into the index
//! (`store::load_active`); skipped with `ALERTS_BENCH_DB=off`.

use std::hint::black_box;
use std::time::Instant;

use bus::{Asset, MarketQuote, Price};
use functions::alerts::Direction;
use functions::alerts::index::{AlertIndex, Armed};
use rust_decimal::Decimal;

const QUOTES: usize = 2_000_000;
const ROUNDS: usize = 7;

fn price(cents: i64) -> Price {
    Price::new(Decimal::new(cents, 2)).expect("positive")
}

/// The asset's price around which quotes wander, in cents.
fn mid(asset: Asset) -> i64 {
    match asset {
        Asset::Btc => 6_500_000,
        Asset::Eth => 320_000,
        Asset::Sol => 15_000,
    }
}

/// `n` alerts: every third asset, alternating above (105-115% of the price) and below (85-95%).
fn index(n: usize) -> AlertIndex {
    let mut index = AlertIndex::default();
    for i in 0..n {
        let asset = Asset::ALL[i % 3];
        let m = mid(asset);
        let offset = (i as i64 / 6) % (m / 10);
        let (direction, level) = if i % 2 == 0 {
            (Direction::Above, m + m / 20 + offset)
        } else {
            (Direction::Below, m - m / 20 - offset)
        };
        let armed = Armed {
            asset,
            direction,
            level: price(level),
        };
        index.insert(i as i64, armed);
    }
    index
}

/// 1,024 quotes within 2% of the price: none reaches a level.
fn quiet_quotes() -> Vec<MarketQuote> {
    (0..1024i64)
        .map(|i| {
            let asset = Asset::ALL[(i % 3) as usize];
            let m = mid(asset);
            let bid = m - m / 50 + (i * 7919) % (m / 25);
            MarketQuote {
                asset,
                bid: price(bid),
                ask: price(bid + 50),
                ts: i,
                simulated: false,
            }
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// ns per quote of `run(index, quote)` over `QUOTES` quotes, median of `ROUNDS`.
fn measure(
    index: &mut AlertIndex,
    quotes: &[MarketQuote],
    run: fn(&mut AlertIndex, &MarketQuote) -> usize,
) -> f64 {
    let rounds = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            let mut fired = 0;
            for i in 0..QUOTES {
                fired += run(index, &quotes[i % quotes.len()]);
            }
            black_box(fired);
            start.elapsed().as_nanos() as f64 / QUOTES as f64
        })
        .collect();
    median(rounds)
}

fn quiet(index: &mut AlertIndex, quote: &MarketQuote) -> usize {
    index.take_crossed(black_box(quote)).len()
}

/// A BTC quote whose ask reaches exactly one "above" alert (id `u32::MAX`), armed again after.
fn fire_one(index: &mut AlertIndex, quote: &MarketQuote) -> usize {
    let fired = index.take_crossed(black_box(quote));
    for c in &fired {
        index.insert(c.id, c.armed);
    }
    fired.len()
}

/// Seconds to load 1,000,000 active alerts from PostgreSQL into a fresh index.
async fn startup_load() -> Result<(f64, usize), Box<dyn std::error::Error>> {
    let db = migrations::TestDatabase::create().await?;
    sqlx::query(
        "INSERT INTO users (id, email, password_hash) \
         SELECT md5(i::text)::uuid, i || '@bench.example', 'x' FROM generate_series(1, 20000) i",
    )
    .execute(&db.pool)
    .await?;
    sqlx::query(
        "INSERT INTO alerts (user_id, asset, direction, price, status, created_at, changed_at) \
         SELECT md5((1 + i % 20000)::text)::uuid, (ARRAY['BTC','ETH','SOL'])[1 + i % 3], \
                CASE WHEN i % 2 = 0 THEN 'above' ELSE 'below' END, 1000 + (i % 50000) / 100.0, \
                'active', 0, 0 \
         FROM generate_series(1, 1000000) i",
    )
    .execute(&db.pool)
    .await?;
    let mut index = AlertIndex::default();
    let start = Instant::now();
    functions::alerts::store::load_active(&db.pool, &mut index).await?;
    let secs = start.elapsed().as_secs_f64();
    // A million rows are not left behind on the shared server.
    db.pool.close().await;
    let admin = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| migrations::DEFAULT_DATABASE_URL.to_string());
    let admin = sqlx::PgPool::connect(&admin).await?;
    sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", db.name))
        .execute(&admin)
        .await?;
    Ok((secs, index.len()))
}

fn main() {
    let quotes = quiet_quotes();
    let m = mid(Asset::Btc);
    let lone = Armed {
        asset: Asset::Btc,
        direction: Direction::Above,
        level: price(m + m / 40),
    };
    let firing = vec![MarketQuote {
        asset: Asset::Btc,
        bid: price(m + m / 40 - 50),
        ask: price(m + m / 40),
        ts: 0,
        simulated: false,
    }];
    println!("alerts index, {QUOTES} quotes per round, median of {ROUNDS} rounds");
    let mut results = Vec::new();
    for n in [0usize, 1_000, 1_000_000] {
        let mut idx = index(n);
        let none = measure(&mut idx, &quotes, quiet);
        idx.insert(i64::from(u32::MAX), lone);
        let one = measure(&mut idx, &firing, fire_one);
        println!(
            "{n:>9} active: quote firing none {none:7.1} ns, firing one (re-armed) {one:7.1} ns"
        );
        results.push(none);
    }
    println!(
        "firing none, 1,000,000 / 1,000 active: {:.2}x (goal within 2x); floor (0 active) {:.1} ns",
        results[2] / results[1],
        results[0]
    );
    if std::env::var("ALERTS_BENCH_DB").as_deref() != Ok("off") {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        match rt.block_on(startup_load()) {
            Ok((secs, n)) => {
                println!("start-up: {n} active alerts loaded from PostgreSQL in {secs:.2} s")
            }
            Err(e) => println!("start-up load skipped: {e}"),
        }
    }
}
