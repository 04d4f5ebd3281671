//! `GET /api/v1/trade/orders/history?limit=&before=` (signed in): the user's finished orders
//! (filled, or cancelled by the user, by expiry or for want of margin) from PostgreSQL
//! (written by [`crate::persist`]), most recently finished first. A filled order names the
//! position it opened (`positionId`), a cancelled one why (`cancelReason`). Paginated like
//! [`crate::history`]: `next` is the cursor to pass as `before`, null on the last page.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use bus::{OrderId, PositionId, Quantity};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::postgres::PgRow;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::cursor::{Cursor, page};
use crate::error::ApiError;
use crate::history::{corrupt, id, leverage, opt_price, page_limit, price, reason, text};
use crate::state::AppState;
use crate::views::{FinishedOrderBody, OrderBody, OrderStatus};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Params {
    /// At most this many orders (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next` cursor of the previous page.
    #[param(pattern = r"^[0-9]{1,18}_[0-9]{1,18}$")]
    before: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrderHistoryPage)]
struct Page {
    orders: Vec<FinishedOrderBody>,
    /// The cursor to pass as `before` for the next page; null on the last page.
    #[schema(required = true, pattern = r"^[0-9]{1,18}_[0-9]{1,18}$")]
    next: Option<String>,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(history))
}

/// The user's filled and cancelled orders, most recently finished first.
#[utoipa::path(
    get,
    path = "/api/v1/trade/orders/history",
    operation_id = "orderHistory",
    tag = "orders",
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
async fn history(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let limit = page_limit(params.limit)?;
    let [at, order] = Cursor::<2>::before(params.before.as_deref())?.0;
    // Order ids are unique, so (finished_at, id) orders the rows totally.
    let rows = sqlx::query(
        "SELECT id, asset, side, order_type, price, quantity, leverage, stop_loss, take_profit, \
                expires_at, created_at, status, cancel_reason, position_id, finished_at \
         FROM orders \
         WHERE user_id = $1 AND status <> 'pending' AND (finished_at, id) < ($2, $3) \
         ORDER BY finished_at DESC, id DESC LIMIT $4",
    )
    .bind(user.0.0)
    .bind(at)
    .bind(order)
    .bind(i64::from(limit) + 1)
    .fetch_all(state.db())
    .await?;
    let (orders, next) = page(&rows, limit, |row| {
        let finished = finished_from_row(row)?;
        let cursor = Cursor([finished.finished_at, row.try_get("id")?]);
        Ok((finished, cursor))
    })?;
    Ok(Json(Page { orders, next }))
}

fn status(row: &PgRow) -> Result<OrderStatus, ApiError> {
    match row.try_get::<String, _>("status")?.as_str() {
        "filled" => Ok(OrderStatus::Filled),
        "cancelled" => Ok(OrderStatus::Cancelled),
        _ => Err(corrupt("status")),
    }
}

fn finished_from_row(row: &PgRow) -> Result<FinishedOrderBody, ApiError> {
    let quantity = Quantity::new(row.try_get("quantity")?).map_err(|_| corrupt("quantity"))?;
    let position_id: Option<i64> = row.try_get("position_id")?;
    let position_id = position_id
        .map(|p| {
            u64::try_from(p)
                .map(PositionId)
                .map_err(|_| corrupt("position_id"))
        })
        .transpose()?;
    let finished_at: Option<i64> = row.try_get("finished_at")?;
    Ok(FinishedOrderBody {
        order: OrderBody {
            id: OrderId(id(row, "id")?),
            asset: text(row, "asset")?,
            side: text(row, "side")?,
            order_type: text(row, "order_type")?,
            price: price(row, "price")?,
            quantity,
            leverage: leverage(row)?,
            stop_loss: opt_price(row, "stop_loss")?,
            take_profit: opt_price(row, "take_profit")?,
            expires_at: row.try_get("expires_at")?,
            status: status(row)?,
            created_at: row.try_get("created_at")?,
        },
        position_id,
        cancel_reason: reason(row, "cancel_reason")?,
        finished_at: finished_at.ok_or_else(|| corrupt("finished_at"))?,
    })
}
