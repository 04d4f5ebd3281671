//! `persist`'s writes (run by hand, in release): `cargo bench -p functions --bench persist`.
//!
//! A fresh database; `EVENTS` (default 40,000) events the way a trading session makes them:
//! each position opened and, a few events later, closed (half at a stop-loss), across 64
//! users. They are written by `functions::persist::write_all` in batches of `BATCH` events
//! (default: 1, 8 and 64 in turn; `persist` writes what one fetch returned, so the batch size
//! follows the event rate), one batch at a time as `persist` does. Reported per batch size:
//! events/s, and the CPU the PostgreSQL backend and this process spent per event (from
//! `/proc`), with the floor of the same run: `SELECT 1` round trips through the same pool.

use std::time::Instant;

use bus::{
    Asset, CloseReason, ClosedPosition, Event, Leverage, Money, Position, PositionId, Price,
    Quantity, Side, UserId,
};
use functions::persist::{EventKey, write_all};
use migrations::TestDatabase;
use sqlx::PgPool;

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// CPU seconds of the backends of `db` and of this process so far.
async fn cpu(pool: &PgPool, name: &str) -> Res<(f64, f64)> {
    let pids: Vec<(i32,)> = sqlx::query_as("SELECT pid FROM pg_stat_activity WHERE datname = $1")
        .bind(name)
        .fetch_all(pool)
        .await?;
    let secs = |pid: u32| bus::process::cpu::process_secs(pid).unwrap_or(0.0);
    let backends = pids.iter().map(|p| secs(p.0 as u32)).sum();
    Ok((backends, secs(std::process::id())))
}

fn position(id: u64, user: UserId, at: i64) -> Res<Position> {
    Ok(Position {
        id: PositionId(id),
        user_id: user,
        asset: Asset::ALL[(id % 3) as usize],
        side: if id.is_multiple_of(2) {
            Side::Buy
        } else {
            Side::Sell
        },
        quantity: "0.01".parse::<Quantity>()?,
        leverage: Leverage::new(10)?,
        open_price: "65000.5".parse::<Price>()?,
        margin: "65.0005".parse::<Money>()?,
        liquidation_price: Some("58500.45".parse::<Price>()?),
        stop_loss: (id.is_multiple_of(2))
            .then(|| "64000".parse())
            .transpose()?,
        take_profit: None,
        opened_at: at,
        trailing_distance: None,
    })
}

/// `n` events from `first_seq`: opens, each closed four opens later.
fn session(first_seq: u64, n: usize, users: &[UserId]) -> Res<Vec<(EventKey, Event)>> {
    let mut events = Vec::with_capacity(n);
    let mut open: std::collections::VecDeque<Position> = Default::default();
    let mut seq = first_seq;
    while events.len() < n {
        let key = EventKey { seq, index: 0 };
        let at = 1_700_000_000_000 + seq as i64;
        let event = if open.len() >= 4 {
            let p = open.pop_front().ok_or("none open")?;
            Event::PositionClosed {
                position: ClosedPosition {
                    close_reason: if p.id.0.is_multiple_of(2) {
                        CloseReason::StopLoss
                    } else {
                        CloseReason::Manual
                    },
                    close_price: "65100".parse()?,
                    realized_pnl: "1.0".parse()?,
                    closed_at: at,
                    absorbed_loss: Money::ZERO,
                    position: p,
                },
            }
        } else {
            let p = position(seq, users[seq as usize % users.len()], at)?;
            open.push_back(p.clone());
            Event::PositionOpened { position: p }
        };
        events.push((key, event));
        seq += 1;
    }
    Ok(events)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Res<()> {
    let total: usize = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40_000);
    let sizes: Vec<usize> = std::env::var("BATCH")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1, 8, 64]);
    let db = TestDatabase::create().await?;
    let users: Vec<UserId> = (0..64).map(|_| UserId(uuid::Uuid::new_v4())).collect();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "{total} events per batch size, load average {}",
        load.split_whitespace().next().unwrap_or("?")
    );
    println!("| batch | events/s | postgres µs/event | this process µs/event |");
    println!("|---|---|---|---|");
    let mut seq = 1;
    for size in sizes {
        let events = session(seq, total, &users)?;
        seq += total as u64;
        let (pg0, me0) = cpu(&db.pool, &db.name).await?;
        let started = Instant::now();
        for batch in events.chunks(size.max(1)) {
            write_all(&db.pool, batch.iter().map(|(k, e)| (*k, e))).await?;
        }
        let secs = started.elapsed().as_secs_f64();
        let (pg1, me1) = cpu(&db.pool, &db.name).await?;
        let per = |s: f64| s * 1e6 / total as f64;
        println!(
            "| {size} | {:.0} | {:.1} | {:.1} |",
            total as f64 / secs,
            per(pg1 - pg0),
            per(me1 - me0)
        );
    }
    // The floor: a round trip that does nothing.
    let n = 10_000;
    let (pg0, me0) = cpu(&db.pool, &db.name).await?;
    let started = Instant::now();
    for _ in 0..n {
        sqlx::query("SELECT 1").execute(&db.pool).await?;
    }
    let secs = started.elapsed().as_secs_f64();
    let (pg1, me1) = cpu(&db.pool, &db.name).await?;
    println!(
        "| floor: `SELECT 1` | {:.0}/s | {:.1} | {:.1} |",
        n as f64 / secs,
        (pg1 - pg0) * 1e6 / n as f64,
        (me1 - me0) * 1e6 / n as f64
    );
    Ok(())
}
