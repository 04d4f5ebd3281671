//! Candles: `GET /api/v1/candles` (public) and the event function that builds them from the
//! `TRADES` stream ([`ingest`]).
//!
//! `GET /api/v1/candles?asset=BTC&interval=1m&from=&to=&limit=` ->
//! `{asset, interval, candles: [{time, open, high, low, close, volume, trades}]}`, oldest
//! first. `time` is the bucket start in unix seconds; prices and volume are decimal strings.
//! `from`/`to` are unix seconds and bound the bucket start (`from <= time <= to`); with
//! `from`, the oldest `limit` candles of the range are returned, without it the newest
//! `limit` up to `to` (default: now). `limit` defaults to 500, at most 1500. Buckets without
//! trades have no candle. Errors (400): `invalid_asset`, `invalid_interval`, `invalid_range`,
//! `invalid_limit`.

pub mod ingest;
pub mod interval;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use bus::Asset;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;
pub use interval::Interval;

pub const DEFAULT_LIMIT: u32 = 500;
pub const MAX_LIMIT: u32 = 1500;

#[derive(Debug, Deserialize)]
struct Params {
    asset: Option<String>,
    interval: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
}

/// A validated candle request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandleQuery {
    pub asset: Asset,
    pub interval: Interval,
    pub from: Option<i64>,
    pub to: i64,
    pub limit: u32,
}

#[derive(Debug, Serialize, sqlx::FromRow)]
pub struct CandleBody {
    pub time: i64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    pub volume: Decimal,
    pub trades: i64,
}

#[derive(Debug, Serialize)]
struct CandlesBody {
    asset: Asset,
    interval: &'static str,
    candles: Vec<CandleBody>,
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/candles", get(candles))
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

fn parse(p: Params, now_secs: i64) -> Result<CandleQuery, ApiError> {
    let asset = p
        .asset
        .ok_or_else(|| ApiError::bad_request("invalid_asset", "asset is required"))?
        .parse::<Asset>()
        .map_err(|e| ApiError::bad_request("invalid_asset", e.to_string()))?;
    let interval = p
        .interval
        .as_deref()
        .unwrap_or("1m")
        .parse::<Interval>()
        .map_err(|e| ApiError::bad_request("invalid_interval", e))?;
    let seconds = |name: &str, v: Option<String>| -> Result<Option<i64>, ApiError> {
        v.map(|v| {
            v.parse::<i64>()
                .ok()
                .filter(|s| (0..=253_402_300_799).contains(s)) // up to year 9999
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_range",
                        format!("{name} must be unix seconds, got {v:?}"),
                    )
                })
        })
        .transpose()
    };
    let from = seconds("from", p.from)?;
    let to = seconds("to", p.to)?.unwrap_or(now_secs);
    if from.is_some_and(|f| f > to) {
        return Err(ApiError::bad_request("invalid_range", "from is after to"));
    }
    let limit = match p.limit {
        None => DEFAULT_LIMIT,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_limit",
                    format!("limit must be 1 to {MAX_LIMIT}, got {v:?}"),
                )
            })?,
    };
    Ok(CandleQuery {
        asset,
        interval,
        from,
        to,
        limit,
    })
}

const OLDEST_FIRST: &str = "SELECT extract(epoch FROM bucket)::bigint AS time, open, high, low, \
    close, volume, trades FROM candles WHERE asset = $1 AND interval_secs = $2 \
    AND bucket >= to_timestamp($3) AND bucket <= to_timestamp($4) ORDER BY bucket LIMIT $5";
const NEWEST_FIRST: &str = "SELECT extract(epoch FROM bucket)::bigint AS time, open, high, low, \
    close, volume, trades FROM candles WHERE asset = $1 AND interval_secs = $2 \
    AND bucket >= to_timestamp($3) AND bucket <= to_timestamp($4) ORDER BY bucket DESC LIMIT $5";

/// The candles of a validated query, oldest first.
pub async fn fetch(db: &PgPool, q: &CandleQuery) -> Result<Vec<CandleBody>, sqlx::Error> {
    let sql = if q.from.is_some() {
        OLDEST_FIRST
    } else {
        NEWEST_FIRST
    };
    // Whole seconds below 2^53 convert to f64 exactly (to_timestamp takes double precision).
    let mut candles = sqlx::query_as::<_, CandleBody>(sql)
        .bind(q.asset.symbol())
        .bind(q.interval.secs() as i32) // at most 604,800
        .bind(q.from.unwrap_or(0) as f64)
        .bind(q.to as f64)
        .bind(i64::from(q.limit))
        .fetch_all(db)
        .await?;
    if q.from.is_none() {
        candles.reverse();
    }
    Ok(candles)
}

#[tracing::instrument(skip_all)]
async fn candles(
    State(state): State<AppState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<CandlesBody>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_request", e.body_text()))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let q = parse(params, now)?;
    let candles = fetch(state.db(), &q)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading candles: {e}")))?;
    Ok(Json(CandlesBody {
        asset: q.asset,
        interval: q.interval.as_str(),
        candles,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        Params {
            asset: get("asset"),
            interval: get("interval"),
            from: get("from"),
            to: get("to"),
            limit: get("limit"),
        }
    }

    fn code(r: Result<CandleQuery, ApiError>) -> &'static str {
        r.err().map(|e| e.status_and_code().1).unwrap_or("ok")
    }

    #[test]
    fn validates_every_parameter_with_a_code() {
        let q = parse(params(&[("asset", "btc")]), 1_000).expect("defaults");
        assert_eq!(
            q,
            CandleQuery {
                asset: Asset::Btc,
                interval: Interval::M1,
                from: None,
                to: 1_000,
                limit: 500
            }
        );
        assert_eq!(code(parse(params(&[]), 0)), "invalid_asset");
        assert_eq!(
            code(parse(params(&[("asset", "DOGE")]), 0)),
            "invalid_asset"
        );
        assert_eq!(
            code(parse(params(&[("asset", "BTC"), ("interval", "2h")]), 0)),
            "invalid_interval"
        );
        assert_eq!(
            code(parse(
                params(&[("asset", "BTC"), ("from", "10"), ("to", "5")]),
                0
            )),
            "invalid_range"
        );
        assert_eq!(
            code(parse(params(&[("asset", "BTC"), ("from", "-1")]), 0)),
            "invalid_range"
        );
        assert_eq!(
            code(parse(params(&[("asset", "BTC"), ("to", "soon")]), 0)),
            "invalid_range"
        );
        assert_eq!(
            code(parse(params(&[("asset", "BTC"), ("limit", "0")]), 0)),
            "invalid_limit"
        );
        assert_eq!(
            code(parse(params(&[("asset", "BTC"), ("limit", "1501")]), 0)),
            "invalid_limit"
        );
        assert_eq!(
            code(parse(
                params(&[("asset", "BTC"), ("limit", "1500"), ("interval", "1w")]),
                0
            )),
            "ok"
        );
    }
}
