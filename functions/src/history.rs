//! `GET /api/v1/trade/closed?limit=&before=` (signed in): the user's closed positions from
//! PostgreSQL (written by [`crate::persist`]), newest first. `next` is the cursor to pass as
//! `before` for the following page, null on the last page.

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
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{ClosedBody, PositionBody};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// Most digits of each part of a cursor (any 18 digits fit an `i64`).
const CURSOR_DIGITS: usize = 18;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Params {
    /// At most this many positions (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    #[param(pattern = r"^[0-9]{1,18}_[0-9]{1,18}$")]
    before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ClosedPage)]
struct Page {
    positions: Vec<ClosedBody>,
    /// The cursor to pass as `before` for the next page; null on the last page.
    #[schema(required = true, pattern = r"^[0-9]{1,18}_[0-9]{1,18}$")]
    next: Option<String>,
}

/// A keyset cursor: the `(closedAt, id)` of the last position of the previous page, written
/// `<closedAt>_<id>`, each 1 to 18 decimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    closed_at: i64,
    id: i64,
}

impl Cursor {
    fn parse(s: &str) -> Result<Self, ApiError> {
        let bad = || ApiError::bad_request("invalid_query", "`before` is not a cursor from `next`");
        let number = |part: &str| {
            let digits = !part.is_empty()
                && part.len() <= CURSOR_DIGITS
                && part.bytes().all(|b| b.is_ascii_digit());
            digits.then(|| part.parse().ok()).flatten().ok_or_else(bad)
        };
        let (at, id) = s.split_once('_').ok_or_else(bad)?;
        Ok(Self {
            closed_at: number(at)?,
            id: number(id)?,
        })
    }

    fn encode(self) -> String {
        format!("{}_{}", self.closed_at, self.id)
    }
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(closed))
}

/// The user's closed positions, newest first.
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
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit is from 1 to {MAX_LIMIT}"),
        ));
    }
    let before = params.before.as_deref().map(Cursor::parse).transpose()?;
    let (at, id) = before.map_or((i64::MAX, i64::MAX), |c| (c.closed_at, c.id));
    let rows = sqlx::query(
        "SELECT id, asset, side, quantity, leverage, open_price, margin, liquidation_price, \
                stop_loss, take_profit, opened_at, close_price, realized_pnl, close_reason, closed_at \
         FROM positions \
         WHERE user_id = $1 AND status = 'closed' AND (closed_at, id) < ($2, $3) \
         ORDER BY closed_at DESC, id DESC LIMIT $4",
    )
    .bind(user.0.0)
    .bind(at)
    .bind(id)
    .bind(i64::from(limit) + 1)
    .fetch_all(state.db())
    .await?;
    let more = rows.len() > limit as usize;
    let mut positions = Vec::with_capacity(rows.len());
    let mut last = None;
    for row in rows.iter().take(limit as usize) {
        positions.push(closed_from_row(row)?);
        last = Some(Cursor {
            closed_at: row.try_get("closed_at")?,
            id: row.try_get("id")?,
        });
    }
    let next = if more { last.map(Cursor::encode) } else { None };
    Ok(Json(Page { positions, next }))
}

fn corrupt(what: &str) -> ApiError {
    ApiError::Internal(format!("stored position has an invalid {what}"))
}

fn price(row: &PgRow, col: &str) -> Result<Price, ApiError> {
    Price::new(row.try_get::<Decimal, _>(col)?).map_err(|_| corrupt(col))
}

fn opt_price(row: &PgRow, col: &str) -> Result<Option<Price>, ApiError> {
    row.try_get::<Option<Decimal>, _>(col)?
        .map(|d| Price::new(d).map_err(|_| corrupt(col)))
        .transpose()
}

fn money(row: &PgRow, col: &str) -> Result<Money, ApiError> {
    Money::new(row.try_get::<Decimal, _>(col)?).map_err(|_| corrupt(col))
}

fn text<T: std::str::FromStr>(row: &PgRow, col: &str) -> Result<T, ApiError> {
    row.try_get::<String, _>(col)?
        .parse()
        .map_err(|_| corrupt(col))
}

fn closed_from_row(row: &PgRow) -> Result<ClosedBody, ApiError> {
    let id: i64 = row.try_get("id")?;
    let leverage: i32 = row.try_get("leverage")?;
    let leverage = u32::try_from(leverage)
        .ok()
        .and_then(|l| Leverage::new(l).ok())
        .ok_or_else(|| corrupt("leverage"))?;
    let quantity = Quantity::new(row.try_get("quantity")?).map_err(|_| corrupt("quantity"))?;
    let reason: String = row.try_get("close_reason")?;
    let close_reason = serde_json::from_value(serde_json::Value::String(reason))
        .map_err(|_| corrupt("close_reason"))?;
    Ok(ClosedBody {
        position: PositionBody {
            id: PositionId(u64::try_from(id).map_err(|_| corrupt("id"))?),
            asset: text(row, "asset")?,
            side: text(row, "side")?,
            quantity,
            leverage,
            open_price: price(row, "open_price")?,
            margin: money(row, "margin")?,
            liquidation_price: opt_price(row, "liquidation_price")?,
            stop_loss: opt_price(row, "stop_loss")?,
            take_profit: opt_price(row, "take_profit")?,
            opened_at: row.try_get("opened_at")?,
        },
        close_price: price(row, "close_price")?,
        realized_pnl: money(row, "realized_pnl")?,
        close_reason,
        closed_at: row.try_get("closed_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor {
            closed_at: 1_700_000_000_000,
            id: 42,
        };
        assert_eq!(Cursor::parse(&c.encode()).expect("cursor"), c);
        for bad in [
            "",
            "12",
            "a_b",
            "1_",
            "_2",
            "1_2_3",
            "+1_2",
            "-1_2",
            "1_-2",
            "1234567890123456789_1",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }
}
