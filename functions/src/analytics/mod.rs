//! A trader's analytics (signed in), from the realised trades in PostgreSQL (full closes and
//! partial closes, the `closed_trades` view):
//!
//! - `GET /api/v1/account/stats?from=&to=`: trade count, wins, losses, win rate, gross
//!   profit and loss, profit factor, average and largest win and loss, realised PnL, overall,
//!   per asset and per close reason (every asset and every reason listed, 0 when absent);
//! - `GET /api/v1/account/pnl?interval=1d|1w&from=&to=`: realised PnL per UTC day (or week
//!   from Monday 00:00 UTC) and its running sum from the start of the range, every bucket
//!   present (0 without trades).
//!
//! `from`/`to` are ms since the epoch and select trades closed in `[from, to)`: `from`
//! inclusive, `to` exclusive, so adjacent ranges never count a trade twice. A partial first
//! bucket holds only the trades from `from` on.

mod figures;
mod range;
mod sql;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use bus::Asset;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use figures::{AssetFigures, Figures, ReasonCount, Sums, cents};
pub use range::{DAY_MS, Split, WEEK_MS, day_start, week_start};

use crate::auth::AuthUser;
use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;

/// Latest accepted `from`/`to`: 9999-12-31 23:59:59.999 UTC, in ms.
pub const MAX_MS: i64 = 253_402_300_799_999;
/// Most buckets one P&L answer holds (27 years of days).
pub const MAX_BUCKETS: i64 = 10_000;

/// Read as strings so each bad value gets its own code; the documented types are what
/// [`parse_range`] accepts.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StatsParams {
    /// Earliest close time counted (inclusive), ms since the epoch (default: 0).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799999_i64)]
    from: Option<String>,
    /// Close times before this are counted (exclusive), ms (default: no end).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799999_i64)]
    to: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PnlParams {
    /// Bucket width: a UTC day or a week from Monday 00:00 UTC (default 1d).
    #[param(value_type = Option<String>, pattern = "^(1d|1w)$")]
    interval: Option<String>,
    /// Earliest close time counted (inclusive), ms (default: the first trade's day).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799999_i64)]
    from: Option<String>,
    /// Close times before this are counted (exclusive), ms (default: now).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 253402300799999_i64)]
    to: Option<String>,
}

/// The user's performance over the trades closed in `[from, to)`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = AccountStats)]
struct StatsBody {
    from: i64,
    /// Null when the range has no end.
    #[schema(required = true)]
    to: Option<i64>,
    overall: Figures,
    /// Every asset, in the order of `GET /assets`.
    by_asset: Vec<AssetFigures>,
    /// Every close reason.
    by_close_reason: Vec<ReasonCount>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PnlPoint)]
struct PnlPoint {
    /// Bucket start, ms since the epoch (UTC midnight; a Monday for `1w`).
    time: i64,
    /// Trades closed in the bucket.
    trades: i64,
    /// Their realised PnL.
    pnl: bus::Money,
    /// Realised PnL from the start of the range to the end of this bucket.
    cumulative: bus::Money,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = PnlSeries)]
struct PnlBody {
    #[schema(value_type = String, pattern = "^(1d|1w)$")]
    interval: &'static str,
    /// The range counted, `[from, to)`; null without trades and without `from`.
    #[schema(required = true)]
    from: Option<i64>,
    to: i64,
    /// Oldest first; empty when the range is empty.
    points: Vec<PnlPoint>,
}

/// The routes with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(stats))
        .routes(routes!(pnl))
}

pub fn routes() -> axum::Router<AppState> {
    router().into()
}

/// The analytics function alone (its Lambda main, `src/bin/analytics.rs`).
pub fn app(state: AppState) -> axum::Router {
    finish(routes().with_state(state.clone()), &state)
}

/// A `from`/`to` value: ms from 0 to [`MAX_MS`].
fn ms(name: &str, v: Option<String>) -> Result<Option<i64>, ApiError> {
    v.map(|v| {
        v.parse::<i64>()
            .ok()
            .filter(|ms| (0..=MAX_MS).contains(ms))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_range",
                    format!("{name} must be ms since the epoch from 0 to {MAX_MS}, got {v:?}"),
                )
            })
    })
    .transpose()
}

/// `from`/`to` checked. A `to` before `from` is an empty range (no trades, no buckets), as on
/// `/candles`: every value the document allows is answered, none refused as malformed.
fn parse_range(
    from: Option<String>,
    to: Option<String>,
) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let (from, to) = (ms("from", from)?, ms("to", to)?);
    let to = match (from, to) {
        (Some(f), Some(t)) => Some(t.max(f)),
        (_, t) => t,
    };
    Ok((from, to))
}

fn query<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

/// Trade statistics over the user's trades closed in `[from, to)` (full and partial closes).
/// A win is a trade with realised PnL > 0, a loss < 0; a breakeven trade counts in `trades`
/// only. Money is exact to the cent (averages rounded half-even).
#[utoipa::path(
    get,
    path = "/api/v1/account/stats",
    operation_id = "accountStats",
    tag = "account",
    security(("bearer" = [])),
    params(StatsParams),
    responses(
        (status = 200, description = "The figures", body = StatsBody),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn stats(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<StatsParams>, QueryRejection>,
) -> Result<Json<StatsBody>, ApiError> {
    let p = query(params)?;
    let (from, to) = parse_range(p.from, p.to)?;
    let from = from.unwrap_or(0);
    let rows = sql::stats(state.db(), user.0, from, to.unwrap_or(i64::MAX)).await?;
    let by_asset = Asset::ALL
        .into_iter()
        .map(|asset| AssetFigures {
            asset,
            figures: Figures::from(&find(&rows.by_asset, asset)),
        })
        .collect();
    let by_close_reason = figures::all_reasons()
        .into_iter()
        .map(|close_reason| {
            let s = find(&rows.by_reason, close_reason);
            ReasonCount {
                close_reason,
                trades: s.trades,
                realized_pnl: cents(s.realized_pnl),
            }
        })
        .collect();
    Ok(Json(StatsBody {
        from,
        to,
        overall: Figures::from(&rows.overall),
        by_asset,
        by_close_reason,
    }))
}

/// The sums found for `key`, zero when it had no trades.
fn find<K: PartialEq>(found: &[(K, Sums)], key: K) -> Sums {
    found
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, s)| s.clone())
        .unwrap_or_default()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(MAX_MS))
        .min(MAX_MS)
}

/// Realised PnL per UTC day (`1d`) or week (`1w`, from Monday 00:00 UTC) of the trades
/// closed in `[from, to)`, with its running sum from `from`; every bucket from the one
/// holding `from` to the one holding the last ms before `to` is present, 0 without trades.
/// Without `from` the series starts on the day of the user's first trade.
#[utoipa::path(
    get,
    path = "/api/v1/account/pnl",
    operation_id = "accountPnl",
    tag = "account",
    security(("bearer" = [])),
    params(PnlParams),
    responses(
        (status = 200, description = "The series", body = PnlBody),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 422, response = crate::openapi::Unprocessable),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn pnl(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<PnlParams>, QueryRejection>,
) -> Result<Json<PnlBody>, ApiError> {
    let p = query(params)?;
    let (weekly, interval) = match p.interval.as_deref().unwrap_or("1d") {
        "1d" => (false, "1d"),
        "1w" => (true, "1w"),
        other => {
            return Err(ApiError::bad_request(
                "invalid_interval",
                format!("interval is 1d or 1w, got {other:?}"),
            ));
        }
    };
    let (from, given_to) = parse_range(p.from, p.to)?;
    let to = given_to.unwrap_or_else(now_ms);
    let from = match from {
        Some(f) => Some(f),
        None => sql::first_day(state.db(), user.0).await?,
    };
    let body = |from, points| PnlBody {
        interval,
        from,
        to,
        points,
    };
    let Some(from) = from.filter(|f| *f < to) else {
        return Ok(Json(body(from, Vec::new())));
    };
    let bucket = |ms| {
        if weekly {
            week_start(ms)
        } else {
            day_start(ms)
        }
    };
    let (first, last) = (bucket(from), bucket(to - 1));
    let width = if weekly { WEEK_MS } else { DAY_MS };
    if (last - first) / width + 1 > MAX_BUCKETS {
        return Err(ApiError::Unprocessable {
            code: "invalid_range",
            message: format!("at most {MAX_BUCKETS} buckets: narrow the range or use interval=1w"),
        });
    }
    // Without `to` nothing is closed after now, so the range is left open: today is then a
    // whole day of the rollup rather than a partial day read trade by trade.
    let end = given_to.unwrap_or(i64::MAX);
    let rows = sql::pnl(state.db(), user.0, (from, end), (first, last), weekly).await?;
    let points = rows
        .into_iter()
        .map(|r| PnlPoint {
            time: r.time,
            trades: r.trades,
            pnl: cents(r.pnl),
            cumulative: cents(r.cumulative),
        })
        .collect();
    Ok(Json(body(Some(from), points)))
}
