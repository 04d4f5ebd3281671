//! `GET /api/v1/trade/closed?limit=&before=` (signed in): the user's realised trades from
//! PostgreSQL (written by [`crate::persist`]), newest first: every closed position, and every
//! partial close (`partial: true`, the closed part; its levels are null, the position's row
//! keeps them). `next` is the cursor to pass as `before` for the following page, null on the
//! last page.
//!
//! The rows are those of the `closed_trades` view, read from its two tables directly: each
//! row was written by one engine event, and that event's key breaks ties between rows closed
//! in the same millisecond (a position's partial and final closes share its id), so the
//! keyset `(closedAt, event key)` never skips or repeats a row across pages.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use bus::{Leverage, Money, PositionId, Price, Quantity};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::cursor::{Cursor, page};
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{ClosedBody, PositionBody};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Params {
    /// At most this many positions (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    #[param(pattern = r"^[0-9]{1,18}_[0-9]{1,18}_[0-9]{1,18}$")]
    before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClosedPage)]
struct Page {
    positions: Vec<ClosedBody>,
    /// The cursor to pass as `before` for the next page; null on the last page.
    #[schema(required = true, pattern = r"^[0-9]{1,18}_[0-9]{1,18}_[0-9]{1,18}$")]
    next: Option<String>,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(closed))
}

/// The user's closed positions and partial closes (`partial: true`), newest first.
#[utoipa::path(
    get,
    path = "/api/v1/trade/closed",
    operation_id = "closedPositions",
    tag = "trade",
    security(("bearer" = [])),
    params(Params),
    responses(
        (status = 200, description = "A page", body = Page),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn closed(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = page_limit(params.limit)?;
    let [at, seq, index] = Cursor::<3>::before(params.before.as_deref())?.0;
    // Both tables' rows of the user, each with the key of the event that wrote it last (a
    // closed position's row was last written by its close). `closed_at <= $2` lets each
    // branch use its (user_id, closed_at) index.
    let rows = sqlx::query(
        "SELECT * FROM ( \
           SELECT id, asset, side, quantity, leverage, open_price, margin, liquidation_price, \
                  stop_loss, take_profit, trailing_distance, opened_at, close_price, \
                  realized_pnl, close_reason, closed_at, FALSE AS partial, \
                  event_seq, event_index \
             FROM positions \
            WHERE user_id = $1 AND status = 'closed' AND closed_at <= $2 \
           UNION ALL \
           SELECT position_id, asset, side, quantity, leverage, open_price, margin, NULL, \
                  NULL, NULL, NULL, opened_at, close_price, realized_pnl, close_reason, \
                  closed_at, TRUE, event_seq, event_index \
             FROM position_partial_closes \
            WHERE user_id = $1 AND closed_at <= $2 \
         ) trades \
         WHERE (closed_at, event_seq, event_index) < ($2, $3, $4) \
         ORDER BY closed_at DESC, event_seq DESC, event_index DESC LIMIT $5",
    )
    .bind(user.0.0)
    .bind(at)
    .bind(seq)
    .bind(index)
    .bind(i64::from(limit) + 1)
    .fetch_all(state.db())
    .await?;
    let (positions, next) = page(&rows, limit, |row| {
        let index: i32 = row.try_get("event_index")?;
        let cursor = Cursor([
            row.try_get("closed_at")?,
            row.try_get("event_seq")?,
            i64::from(index),
        ]);
        Ok((closed_from_row(row)?, cursor))
    })?;
    Ok(Json(Page { positions, next }))
}

/// The page size asked for, or the default: 400 `invalid_query` outside 1 to [`MAX_LIMIT`].
pub(crate) fn page_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is from 1 to {MAX_LIMIT}"),
        ))
    }
}

pub(crate) fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(format!("stored row has an invalid {what}"))
}

pub(crate) fn price(row: &PgRow, col: &str) -> Result<Price, ApiError> {
    Price::new(row.try_get::<Decimal, _>(col)?).map_err(|_| corrupt(col))
}

pub(crate) fn opt_price(row: &PgRow, col: &str) -> Result<Option<Price>, ApiError> {
    row.try_get::<Option<Decimal>, _>(col)?
        .map(|d| Price::new(d).map_err(|_| corrupt(col)))
        .transpose()
}

fn money(row: &PgRow, col: &str) -> Result<Money, ApiError> {
    Money::new(row.try_get::<Decimal, _>(col)?).map_err(|_| corrupt(col))
}

pub(crate) fn text<T: std::str::FromStr>(row: &PgRow, col: &str) -> Result<T, ApiError> {
    row.try_get::<String, _>(col)?
        .parse()
        .map_err(|_| corrupt(col))
}

/// A stored leverage.
pub(crate) fn leverage(row: &PgRow) -> Result<Leverage, ApiError> {
    let leverage: i32 = row.try_get("leverage")?;
    u32::try_from(leverage)
        .ok()
        .and_then(|l| Leverage::new(l).ok())
        .ok_or_else(|| corrupt("leverage"))
}

/// A stored id (`BIGINT`, never negative).
pub(crate) fn id(row: &PgRow, col: &str) -> Result<u64, ApiError> {
    let id: i64 = row.try_get(col)?;
    u64::try_from(id).map_err(|_| corrupt(col))
}

/// A stored snake_case enum value (a close or cancel reason).
pub(crate) fn reason<T: serde::de::DeserializeOwned>(
    row: &PgRow,
    col: &str,
) -> Result<Option<T>, ApiError> {
    row.try_get::<Option<String>, _>(col)?
        .map(|r| serde_json::from_value(serde_json::Value::String(r)).map_err(|_| corrupt(col)))
        .transpose()
}

fn closed_from_row(row: &PgRow) -> Result<ClosedBody, ApiError> {
    let quantity = Quantity::new(row.try_get("quantity")?).map_err(|_| corrupt("quantity"))?;
    let close_reason = reason(row, "close_reason")?.ok_or_else(|| corrupt("close_reason"))?;
    Ok(ClosedBody {
        position: PositionBody {
            id: PositionId(id(row, "id")?),
            asset: text(row, "asset")?,
            side: text(row, "side")?,
            quantity,
            leverage: leverage(row)?,
            open_price: price(row, "open_price")?,
            margin: money(row, "margin")?,
            liquidation_price: opt_price(row, "liquidation_price")?,
            stop_loss: opt_price(row, "stop_loss")?,
            take_profit: opt_price(row, "take_profit")?,
            opened_at: row.try_get("opened_at")?,
            trailing_distance: opt_price(row, "trailing_distance")?,
        },
        close_price: price(row, "close_price")?,
        realized_pnl: money(row, "realized_pnl")?,
        close_reason,
        closed_at: row.try_get("closed_at")?,
        partial: row.try_get("partial")?,
    })
}
