//! The analytics queries. Both read the user's realised trades in a `[from, to)` range of
//! close times as the union of the whole UTC days in it, pre-summed in `closed_trade_days`
//! (migration 0005), and the trades of the partial edge days from `closed_trades` (full and
//! partial closes, each side through its `(user_id, closed_at)` index). Sums and extremes are
//! exact NUMERIC arithmetic in PostgreSQL.

use bus::{Asset, CloseReason, UserId};
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::figures::Sums;
use super::range::{DAY_MS, Split, WEEK_MS};
use crate::error::ApiError;

/// `t`: one row per rollup bucket or edge trade, each with the same sum columns.
/// `$1` user, `$2..$3` whole days, `$4..$5` and `$6..$7` the edges.
const TRADES: &str = "WITH t AS ( \
    SELECT day AS at, asset, close_reason, trades, wins, losses, gross_profit, gross_loss, \
           largest_win, largest_loss, realized_pnl \
      FROM closed_trade_days WHERE user_id = $1 AND day >= $2 AND day < $3 \
    UNION ALL \
    SELECT closed_at, asset, close_reason, 1, (realized_pnl > 0)::int, (realized_pnl < 0)::int, \
           GREATEST(realized_pnl, 0), LEAST(realized_pnl, 0), \
           CASE WHEN realized_pnl > 0 THEN realized_pnl END, \
           CASE WHEN realized_pnl < 0 THEN realized_pnl END, realized_pnl \
      FROM closed_trades WHERE user_id = $1 AND closed_at >= $4 AND closed_at < $5 \
    UNION ALL \
    SELECT closed_at, asset, close_reason, 1, (realized_pnl > 0)::int, (realized_pnl < 0)::int, \
           GREATEST(realized_pnl, 0), LEAST(realized_pnl, 0), \
           CASE WHEN realized_pnl > 0 THEN realized_pnl END, \
           CASE WHEN realized_pnl < 0 THEN realized_pnl END, realized_pnl \
      FROM closed_trades WHERE user_id = $1 AND closed_at >= $6 AND closed_at < $7) ";

/// Per (asset, close reason): at most 15 rows, which [`stats`] folds into the per-asset,
/// per-reason and overall sums (one aggregation pass instead of three grouping sets).
const STATS: &str = "SELECT asset, close_reason, \
    sum(trades)::bigint AS trades, sum(wins)::bigint AS wins, sum(losses)::bigint AS losses, \
    sum(gross_profit) AS gross_profit, sum(gross_loss) AS gross_loss, \
    max(largest_win) AS largest_win, min(largest_loss) AS largest_loss, \
    sum(realized_pnl) AS realized_pnl \
    FROM t GROUP BY asset, close_reason";

/// `$8..=$9` the first and last bucket starts, `$10` the bucket width in ms (a day or a
/// week); a week bucket starts on Monday (the epoch's day 0 was a Thursday).
const PNL: &str = "SELECT s AS time, COALESCE(b.trades, 0)::bigint AS trades, \
    COALESCE(b.pnl, 0) AS pnl, sum(COALESCE(b.pnl, 0)) OVER (ORDER BY s) AS cumulative \
    FROM generate_series($8::bigint, $9::bigint, $10::bigint) AS s \
    LEFT JOIN ( \
        SELECT closed_trade_day(at) - CASE WHEN $10 = 604800000 \
                   THEN ((closed_trade_day(at) / 86400000 + 3) % 7) * 86400000 ELSE 0 END AS bucket, \
               sum(trades) AS trades, sum(realized_pnl) AS pnl \
          FROM t GROUP BY 1) AS b ON b.bucket = s \
    ORDER BY s";

fn bind_range<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    user: UserId,
    split: Split,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(user.0)
        .bind(split.days.0)
        .bind(split.days.1)
        .bind(split.edges[0].0)
        .bind(split.edges[0].1)
        .bind(split.edges[1].0)
        .bind(split.edges[1].1)
}

/// The exact sums of a user's trades in a range: overall, per asset and per close reason.
pub struct StatsRows {
    pub overall: Sums,
    pub by_asset: Vec<(Asset, Sums)>,
    pub by_reason: Vec<(CloseReason, Sums)>,
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(format!("stored trade has an invalid {what}"))
}

fn sums(row: &PgRow) -> Result<Sums, ApiError> {
    Ok(Sums {
        trades: row.try_get("trades")?,
        wins: row.try_get("wins")?,
        losses: row.try_get("losses")?,
        gross_profit: row.try_get("gross_profit")?,
        gross_loss: row.try_get("gross_loss")?,
        largest_win: row.try_get("largest_win")?,
        largest_loss: row.try_get("largest_loss")?,
        realized_pnl: row.try_get("realized_pnl")?,
    })
}

pub async fn stats(db: &PgPool, user: UserId, from: i64, to: i64) -> Result<StatsRows, ApiError> {
    let sql = format!("{TRADES}{STATS}");
    let rows = bind_range(sqlx::query(&sql), user, Split::new(from, to))
        .fetch_all(db)
        .await?;
    let mut out = StatsRows {
        overall: Sums::default(),
        by_asset: Vec::new(),
        by_reason: Vec::new(),
    };
    for row in &rows {
        let asset: String = row.try_get("asset")?;
        let asset: Asset = asset.parse().map_err(|_| corrupt("asset"))?;
        let reason: String = row.try_get("close_reason")?;
        let reason: CloseReason = serde_json::from_value(serde_json::Value::String(reason))
            .map_err(|_| corrupt("close_reason"))?;
        let s = sums(row)?;
        out.overall.add(&s);
        add_to(&mut out.by_asset, asset, &s);
        add_to(&mut out.by_reason, reason, &s);
    }
    Ok(out)
}

fn add_to<K: PartialEq>(all: &mut Vec<(K, Sums)>, key: K, s: &Sums) {
    match all.iter_mut().find(|(k, _)| *k == key) {
        Some((_, sum)) => sum.add(s),
        None => all.push((key, s.clone())),
    }
}

/// One bucket of the P&L series.
pub struct PnlRow {
    pub time: i64,
    pub trades: i64,
    pub pnl: Decimal,
    pub cumulative: Decimal,
}

/// Realised PnL per bucket from `first` to `last` (bucket starts, inclusive), every bucket
/// present, of the trades closed in `[from, to)`.
pub async fn pnl(
    db: &PgPool,
    user: UserId,
    (from, to): (i64, i64),
    (first, last): (i64, i64),
    weekly: bool,
) -> Result<Vec<PnlRow>, ApiError> {
    let sql = format!("{TRADES}{PNL}");
    let rows = bind_range(sqlx::query(&sql), user, Split::new(from, to))
        .bind(first)
        .bind(last)
        .bind(if weekly { WEEK_MS } else { DAY_MS })
        .fetch_all(db)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(PnlRow {
                time: row.try_get("time")?,
                trades: row.try_get("trades")?,
                pnl: row.try_get("pnl")?,
                cumulative: row.try_get("cumulative")?,
            })
        })
        .collect()
}

/// The start of the first UTC day with a realised trade of the user, if any.
pub async fn first_day(db: &PgPool, user: UserId) -> Result<Option<i64>, ApiError> {
    Ok(
        sqlx::query_scalar("SELECT min(day) FROM closed_trade_days WHERE user_id = $1")
            .bind(user.0)
            .fetch_one(db)
            .await?,
    )
}
