//! Analytics benchmark (run by hand, in release): `cargo bench -p functions --bench analytics`.
//!
//! A fresh database holds one user with `TRADES` (default 100,000) closed positions over the
//! last 365 days (plus 2% as partial closes) and 1,000 other users with 200,000 more. While a
//! writer closes positions the way `persist` does (an insert of the open position, then its
//! update to closed, `WRITE_RATE` closes per second, default 200, half of them the user's,
//! all closed now), the two routes are called through the router (`oneshot`, with a token) 200
//! times each per range, one at a time: p50 / p99 / max. Floor, in the same run and process:
//! `SELECT 1` through the same pool, and `GET /trade/closed?limit=1` through the router.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use functions::AppState;
use migrations::TestDatabase;
use sqlx::PgPool;
use tower::ServiceExt;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const DAY: i64 = 86_400_000;
const RUNS: usize = 200;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `n` closed positions of `user` (or of 1,000 other users when `user` is None), ids from
/// `first_id`, close times spread evenly over the 365 days before `end`.
async fn fill(db: &PgPool, user: Option<uuid::Uuid>, first_id: i64, n: i64, end: i64) -> Res<()> {
    sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            opened_at, status, close_price, realized_pnl, close_reason, closed_at, event_seq, event_index) \
         SELECT $1 + i, COALESCE($2, md5((i % 1000)::text)::uuid), (ARRAY['BTC','ETH','SOL'])[1 + i % 3], \
            'buy', 0.01, 10, 65000, 65, c - 60000, 'closed', 65100, \
            ((i * 7919) % 20001 - 10000) / 100.0, \
            (ARRAY['manual','stop_loss','take_profit','liquidation','trailing_stop'])[1 + i % 5], \
            c, $1 + i, 0 \
         FROM generate_series(0::bigint, $3 - 1) AS i, \
              LATERAL (SELECT $4 - 365 * 86400000::bigint + i * (365 * 86400000::bigint / $3)) AS t(c)",
    )
    .bind(first_id)
    .bind(user)
    .bind(n)
    .bind(end)
    .execute(db)
    .await?;
    Ok(())
}

async fn partial_closes(db: &PgPool, user: uuid::Uuid, n: i64, end: i64) -> Res<()> {
    sqlx::query(
        "INSERT INTO position_partial_closes (event_seq, event_index, position_id, user_id, asset, \
            side, quantity, leverage, open_price, margin, opened_at, close_price, realized_pnl, \
            close_reason, closed_at) \
         SELECT i, 1, i, $1, 'ETH', 'sell', 0.5, 5, 3000, 300, $3 - 366 * 86400000::bigint, 2990, \
            ((i * 31) % 2001 - 1000) / 100.0, 'manual', $3 - 365 * 86400000::bigint + i * (365 * 86400000::bigint / $2) \
         FROM generate_series(1::bigint, $2) AS i",
    )
    .bind(user)
    .bind(n)
    .bind(end)
    .execute(db)
    .await?;
    Ok(())
}

/// Closes positions as `persist` writes them until `stop`: open, then close, at `rate`/s.
async fn writer(
    db: PgPool,
    user: uuid::Uuid,
    rate: u64,
    stop: Arc<AtomicBool>,
    done: Arc<AtomicU64>,
) -> Res<()> {
    let mut id = 10_000_000_i64;
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / rate.max(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        id += 1;
        let owner = if id % 2 == 0 {
            user
        } else {
            uuid::Uuid::new_v4()
        };
        let now = now_ms();
        sqlx::query(
            "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
                opened_at, status, event_seq, event_index) \
             VALUES ($1, $2, 'SOL', 'sell', 3, 20, 150, 22.5, $3, 'open', $1, 0)",
        )
        .bind(id)
        .bind(owner)
        .bind(now - 1000)
        .execute(&db)
        .await?;
        sqlx::query(
            "UPDATE positions SET status = 'closed', close_price = 149.5, realized_pnl = 1.50, \
                close_reason = 'take_profit', closed_at = $2, event_seq = event_seq + 1 WHERE id = $1",
        )
        .bind(id)
        .bind(now)
        .execute(&db)
        .await?;
        done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(label: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{label}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(times[RUNS / 2]),
        ms(times[RUNS * 99 / 100 - 1]),
        ms(times[RUNS - 1])
    );
}

async fn time_route(app: &Router, token: &str, path: &str) -> Res<()> {
    let mut times = Vec::with_capacity(RUNS);
    let mut size = 0;
    for _ in 0..RUNS {
        let req = Request::get(path)
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())?;
        let t = Instant::now();
        let res = app.clone().oneshot(req).await?;
        let status = res.status();
        let body = axum::body::to_bytes(res.into_body(), 1 << 24).await?;
        times.push(t.elapsed());
        if status != StatusCode::OK {
            return Err(format!("{path}: {status} {}", String::from_utf8_lossy(&body)).into());
        }
        size = body.len();
    }
    report(&format!("{path} ({size} bytes)"), times);
    Ok(())
}

async fn time_floor(db: &PgPool) -> Res<()> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Instant::now();
        sqlx::query("SELECT 1").execute(db).await?;
        times.push(t.elapsed());
    }
    report("floor: SELECT 1 through the pool", times);
    Ok(())
}

async fn run() -> Res<()> {
    let env = |k: &str, d: i64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (trades, rate) = (env("TRADES", 100_000), env("WRITE_RATE", 200) as u64);
    let db = TestDatabase::create().await?;
    let user = uuid::Uuid::new_v4();
    sqlx::query(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, 'bench@example.com', 'x')",
    )
    .bind(user)
    .execute(&db.pool)
    .await?;
    let end = now_ms() - 60_000;
    let t = Instant::now();
    fill(&db.pool, Some(user), 1, trades, end).await?;
    partial_closes(&db.pool, user, trades / 50, end).await?;
    fill(&db.pool, None, 1_000_000, 200_000, end).await?;
    sqlx::query("VACUUM ANALYZE").execute(&db.pool).await?;
    println!(
        "filled {trades} + {} partial closes for the user, 200,000 for 1,000 others, in {:.1} s",
        trades / 50,
        t.elapsed().as_secs_f64()
    );

    let settings = functions::Settings {
        database_url: db.url.clone(),
        jwt_secret: "bench-secret-of-this-run-32-bytes-or-more".into(),
        ..functions::Settings::default()
    };
    let nats = async_nats::connect(&settings.nats_url).await?;
    let state = AppState::new(&settings, nats, db.pool.clone())?;
    let token = state.tokens().issue(bus::UserId(user))?.token;
    let app = functions::api(state);

    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let w = tokio::spawn(writer(
        db.pool.clone(),
        user,
        rate,
        stop.clone(),
        done.clone(),
    ));
    let t = Instant::now();
    time_floor(&db.pool).await?;
    time_route(&app, &token, "/api/v1/trade/closed?limit=1").await?;
    let now = now_ms();
    let day = now - now.rem_euclid(DAY);
    let paths = [
        "/api/v1/account/stats".to_string(),
        format!("/api/v1/account/stats?from={}", now - 30 * DAY),
        format!(
            "/api/v1/account/stats?from={}&to={now}",
            now - 90 * DAY + 12_345
        ),
        "/api/v1/account/pnl".to_string(),
        format!("/api/v1/account/pnl?from={}", day - 89 * DAY),
        format!(
            "/api/v1/account/pnl?from={}&to={now}",
            now - 30 * DAY + 12_345
        ),
        "/api/v1/account/pnl?interval=1w".to_string(),
    ];
    for path in &paths {
        time_route(&app, &token, path).await?;
    }
    stop.store(true, Ordering::Relaxed);
    w.await??;
    let secs = t.elapsed().as_secs_f64();
    let closes = done.load(Ordering::Relaxed);
    println!(
        "writer: {closes} positions opened and closed meanwhile ({:.0}/s, asked {rate}/s)",
        closes as f64 / secs
    );
    Ok(())
}

fn main() -> Res<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
