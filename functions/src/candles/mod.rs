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
use axum::{Json, Router};
use bus::{Asset, Money, Price};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;
pub use interval::Interval;

pub const DEFAULT_LIMIT: u32 = 500;
pub const MAX_LIMIT: u32 = 1500;

/// Latest accepted `from`/`to`: 9999-12-31 23:59:59 UTC.
pub const MAX_SECONDS: i64 = 253_402_300_799;

/// Read as strings and checked by [`parse`], so each bad value gets its own code; the
/// documented types are what [`parse`] accepts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct Params {
    /// BTC, ETH or SOL (case-insensitive).
    #[param(required = true, value_type = Asset)]
    asset: Option<String>,
    /// Candle interval (default 1m).
    #[param(value_type = Option<String>, pattern = "^(1m|5m|15m|30m|1h|4h|1d|1w)$")]
    interval: Option<String>,
    /// Earliest bucket start, unix seconds.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799_i64)]
    from: Option<String>,
    /// Latest bucket start, unix seconds (default: now).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799_i64)]
    to: Option<String>,
    /// At most this many candles (default 500).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1500)]
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

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
#[schema(as = Candle)]
pub struct CandleBody {
    /// Bucket start, unix seconds.
    pub time: i64,
    #[schema(value_type = Price)]
    pub open: Decimal,
    #[schema(value_type = Price)]
    pub high: Decimal,
    #[schema(value_type = Price)]
    pub low: Decimal,
    #[schema(value_type = Price)]
    pub close: Decimal,
    /// Traded quantity in the bucket.
    #[schema(value_type = Money)]
    pub volume: Decimal,
    /// Number of trades in the bucket.
    pub trades: i64,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Candles)]
struct CandlesBody {
    asset: Asset,
    #[schema(value_type = String, pattern = "^(1m|5m|15m|30m|1h|4h|1d|1w)$")]
    interval: &'static str,
    candles: Vec<CandleBody>,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(candles))
}

pub fn routes() -> Router<AppState> {
    router().into()
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
                .filter(|s| (0..=MAX_SECONDS).contains(s))
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
    // `from` after `to` is an empty range, answered with no candles.
    let to = seconds("to", p.to)?.unwrap_or(now_secs);
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

/// OHLCV candles of an asset, oldest first (public). Candles are built from exchange trades
/// (1m to 1w, weeks starting on Monday 00:00 UTC); `from`/`to` bound the bucket start
/// (inclusive). With `from`, the oldest `limit` candles of the range; without it, the newest
/// `limit` up to `to`. Buckets without trades have no candle.
#[utoipa::path(
    get,
    path = "/api/v1/candles",
    operation_id = "candles",
    tag = "market",
    params(Params),
    responses(
        (status = 200, description = "The candles", body = CandlesBody),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
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
            "ok",
            "an empty range has no candles"
        );
        assert_eq!(
            code(parse(
                params(&[("asset", "BTC"), ("to", "253402300800")]),
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
