//! Pending orders, part of the trade function: `POST /api/v1/trade/orders` (place a limit or
//! stop order), `/trade/orders/cancel`, `/trade/orders/modify` and `GET /trade/orders` (the
//! user's pending orders, from the engine). Filled and cancelled orders are read from
//! PostgreSQL by [`crate::order_history`].
//!
//! Same conventions as [`crate::trade`]: every `POST` takes an optional `Idempotency-Key`;
//! numbers that break a trading rule are 422 with the rule's code (a price `"0"` is
//! `invalid_order_price`, an expiry that is not a time `invalid_expiry`), malformed input 400.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode};
use bus::{
    Accepted, Asset, Command, CommandEnvelope, Leverage, ModifyOrder, OrderId, OrderType,
    PlaceOrder, Price, Quantity, Query, QueryReply, RejectCode, Side, Unchecked,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::body::{JsonBody, command_id};
use crate::error::ApiError;
use crate::input::{self, Expiry};
use crate::listing;
use crate::state::AppState;
use crate::trade::{IdempotencyKey, levels, rule, send, unexpected, unexpected_reply};
use crate::views::{OrderBody, OrderStatus};

/// A limit or stop order. Its stop-loss and take-profit are checked against its price (a
/// buy's stop-loss below it, take-profit above; a sell's the reverse).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PlaceOrderRequest)]
struct PlaceRequest {
    asset: Asset,
    side: Side,
    #[serde(rename = "type")]
    order_type: OrderType,
    /// A buy limit below the ask, a sell limit above the bid, a buy stop above the ask, a sell
    /// stop below the bid (else 422 `invalid_order_price`).
    #[schema(schema_with = input::positive_decimal)]
    price: Unchecked<Price>,
    #[schema(schema_with = input::positive_decimal)]
    quantity: Unchecked<Quantity>,
    #[schema(value_type = Leverage)]
    leverage: Unchecked<Leverage>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    stop_loss: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    take_profit: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_expiry)]
    expires_at: Option<Unchecked<Expiry>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CancelOrderRequest)]
struct CancelRequest {
    #[serde(deserialize_with = "input::order_id")]
    #[schema(value_type = OrderId)]
    order_id: OrderId,
}

/// A missing `price` keeps the order's price; the stop-loss, take-profit and expiry are
/// replaced as a whole (missing or null clears one).
// Named apart from the trade function's `ModifyRequest`: one schema name, one document entry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = ModifyOrderRequest)]
struct ModifyRequest {
    #[serde(deserialize_with = "input::order_id")]
    #[schema(value_type = OrderId)]
    order_id: OrderId,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    price: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    stop_loss: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    take_profit: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_expiry)]
    expires_at: Option<Unchecked<Expiry>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OrderAnswer)]
struct Answer {
    order: OrderBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PendingOrders)]
struct PendingList {
    /// In the order they were placed.
    orders: Vec<OrderBody>,
    /// With `limit`: the `after` of the next page; null on the last page and without `limit`.
    #[schema(required = true, pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

/// The routes with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place, list_pending))
        .routes(routes!(cancel))
        .routes(routes!(modify))
        .merge(crate::order_history::router())
}

fn order_price(price: Unchecked<Price>) -> Result<Price, ApiError> {
    rule(price, RejectCode::InvalidOrderPrice)
}

fn expiry(expires_at: Option<Unchecked<Expiry>>) -> Result<Option<i64>, ApiError> {
    expires_at
        .map(|e| rule(e, RejectCode::InvalidExpiry).map(|e| e.0))
        .transpose()
}

/// Places a pending limit or stop order.
#[utoipa::path(
    post,
    path = "/api/v1/trade/orders",
    operation_id = "placeOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = PlaceRequest,
    responses(
        (status = 201, description = "Placed", body = Answer),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::Unprocessable),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn place(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<PlaceRequest>,
) -> Result<(StatusCode, Json<Answer>), ApiError> {
    let id = command_id(user.0, &headers)?;
    let leverage = rule(body.leverage, RejectCode::InvalidLeverage)?;
    let quantity = rule(body.quantity, RejectCode::InvalidQuantity)?;
    let price = order_price(body.price)?;
    let (stop_loss, take_profit) = levels(body.stop_loss, body.take_profit)?;
    let command = Command::PlaceOrder(PlaceOrder {
        user_id: user.0,
        asset: body.asset,
        side: body.side,
        order_type: body.order_type,
        price,
        quantity,
        leverage,
        stop_loss,
        take_profit,
        expires_at: expiry(body.expires_at)?,
    });
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::OrderPlaced { order } => Ok((
            StatusCode::CREATED,
            Json(Answer {
                order: OrderBody::new(&order, OrderStatus::Pending),
            }),
        )),
        other => Err(unexpected(other)),
    }
}

/// Cancels one of the user's pending orders.
#[utoipa::path(
    post,
    path = "/api/v1/trade/orders/cancel",
    operation_id = "cancelOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = CancelRequest,
    responses(
        (status = 200, description = "Cancelled", body = Answer),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0, order_id = %body.order_id))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CancelRequest>,
) -> Result<Json<Answer>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let command = Command::CancelOrder {
        user_id: user.0,
        order_id: body.order_id,
    };
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::OrderCancelled { order } => Ok(Json(Answer {
            order: OrderBody::new(&order, OrderStatus::Cancelled),
        })),
        other => Err(unexpected(other)),
    }
}

/// Changes one of the user's pending orders: its price (if given), stop-loss, take-profit
/// and expiry (null or missing clears one).
#[utoipa::path(
    post,
    path = "/api/v1/trade/orders/modify",
    operation_id = "modifyOrder",
    tag = "orders",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = ModifyRequest,
    responses(
        (status = 200, description = "Modified", body = Answer),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 422, response = crate::openapi::Unprocessable),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0, order_id = %body.order_id))]
async fn modify(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ModifyRequest>,
) -> Result<Json<Answer>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let price = body.price.map(order_price).transpose()?;
    let (stop_loss, take_profit) = levels(body.stop_loss, body.take_profit)?;
    let command = Command::ModifyOrder(ModifyOrder {
        user_id: user.0,
        order_id: body.order_id,
        price,
        stop_loss,
        take_profit,
        expires_at: expiry(body.expires_at)?,
    });
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::OrderModified { order } => Ok(Json(Answer {
            order: OrderBody::new(&order, OrderStatus::Pending),
        })),
        other => Err(unexpected(other)),
    }
}

/// The user's pending orders, in the order they were placed.
#[utoipa::path(
    get,
    path = "/api/v1/trade/orders",
    operation_id = "listPendingOrders",
    tag = "orders",
    security(("bearer" = [])),
    params(listing::Params),
    responses(
        (status = 200, description = "Pending orders", body = PendingList),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn list_pending(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<axum::extract::Query<listing::Params>, QueryRejection>,
) -> Result<Json<PendingList>, ApiError> {
    let page = listing::requested(params)?;
    let user_id = user.0;
    let query = |page| Query::ListPendingOrders { user_id, page };
    let items = |reply| match reply {
        QueryReply::PendingOrders { orders, next } => {
            let bodies = orders
                .iter()
                .map(|o| OrderBody::new(o, OrderStatus::Pending));
            Ok((bodies.collect(), next))
        }
        other => Err(unexpected_reply(other)),
    };
    let (orders, next) = listing::list(&state, page, query, items).await?;
    Ok(Json(PendingList { orders, next }))
}
