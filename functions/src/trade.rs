//! The trade function: `POST /api/v1/trade/open`, `/close` (all or part of a position),
//! `/modify`, `GET /trade/open` (from the engine), `GET /trade/closed` (history from
//! PostgreSQL, see [`crate::history`]) and the pending orders ([`crate::orders`]).
//!
//! Every `POST` takes an optional `Idempotency-Key`: the engine command id is derived from the
//! user and the key, so a retry gets the first answer and the same key with a different body
//! is 409 `idempotency_key_reused` (the engine's `command_id_reused`).

use axum::extract::State;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use bus::{
    Accepted, Asset, Command, CommandEnvelope, Leverage, ModifyPosition, OpenPosition,
    PartialClose, PositionId, Price, Quantity, Query, QueryReply, RejectCode, Reply, Side,
    Unchecked,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::body::{JsonBody, command_id, finish};
use crate::error::{ApiError, engine_error};
use crate::input;
use crate::listing;
use crate::state::AppState;
use crate::views::{ClosedBody, OpenBody, PositionBody};

/// Quantity, leverage and levels are any well-formed number here: one that breaks a trading
/// rule is 422 with the rule's code (as the engine answers), only malformed input is 400. The
/// document describes the values that pass the rules' format (`crate::input` gives the decimal
/// pattern); a number outside it is a rule break (422), which the document lists.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenRequest {
    asset: Asset,
    side: Side,
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
    /// With `maxSlippageBps`: refuse to fill further than this from the expected price.
    #[serde(default, deserialize_with = "input::optional_price")]
    #[schema(schema_with = input::optional_positive_decimal)]
    expected_price: Option<Price>,
    /// With `expectedPrice`: the most the fill may be worse, in basis points.
    #[serde(default, deserialize_with = "input::optional_u32")]
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 4294967295_u64)]
    max_slippage_bps: Option<u32>,
    /// A trailing stop: the stop-loss follows the market at this price distance, only in the
    /// trader's favour.
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    trailing_distance: Option<Unchecked<Price>>,
}

/// Without `quantity` the whole position closes; with it, that part (a multiple of the
/// asset's quantity step, less than the position's quantity, leaving at least the asset's
/// minimum) and the rest stays open.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CloseRequest {
    #[serde(deserialize_with = "input::position_id")]
    position_id: PositionId,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    quantity: Option<Unchecked<Quantity>>,
}

/// The levels and the trailing distance are replaced; a missing or null one is cleared.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModifyRequest {
    #[serde(deserialize_with = "input::position_id")]
    position_id: PositionId,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    stop_loss: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    take_profit: Option<Unchecked<Price>>,
    #[serde(default)]
    #[schema(schema_with = input::optional_positive_decimal)]
    trailing_distance: Option<Unchecked<Price>>,
}

/// The `Idempotency-Key` header every trade command takes (see [`command_id`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read by `command_id` from the headers; here for the document
pub(crate) struct IdempotencyKey {
    /// Makes the request safe to retry: a retry with the same key and body gets the first
    /// answer; the same key with another body is 409 `idempotency_key_reused`.
    #[serde(rename = "Idempotency-Key")]
    #[param(value_type = String, required = false, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255)]
    key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
struct Wrapped<T> {
    position: T,
}

/// A closed position; after a partial close also the part that stays open.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CloseAnswer)]
struct Closed {
    position: ClosedBody,
    /// What stays open after a partial close (`position.partial` true); absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    remaining: Option<PositionBody>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = OpenPositions)]
struct OpenList {
    /// In id (open) order.
    positions: Vec<OpenBody>,
    /// With `limit`: the `after` of the next page; null on the last page and without `limit`.
    #[schema(required = true, pattern = r"^[0-9]{1,18}$")]
    next: Option<String>,
}

/// The routes with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open, list_open))
        .routes(routes!(close))
        .routes(routes!(modify))
        .merge(crate::history::router())
        .merge(crate::orders::router())
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// Sends one command and returns the engine's success, or its rejection as an error.
pub(crate) async fn send(state: &AppState, cmd: CommandEnvelope) -> Result<Accepted, ApiError> {
    let reply = state
        .engine()
        .send(cmd)
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    match reply {
        Reply::Accepted(accepted) => Ok(accepted),
        Reply::Rejected(rejection) => Err(ApiError::Rejected(rejection)),
    }
}

/// Asks the engine a query; its rejection is the error (as a command's is in [`send`]).
pub(crate) async fn engine_query(state: &AppState, query: Query) -> Result<QueryReply, ApiError> {
    let reply = state
        .engine()
        .query(query)
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    match reply {
        QueryReply::Rejected { rejection } => Err(ApiError::Rejected(rejection)),
        other => Ok(other),
    }
}

/// An answer of another kind than the query asks for (a bug on one side): 500.
pub(crate) fn unexpected_reply(reply: QueryReply) -> ApiError {
    ApiError::Internal(format!("unexpected reply {reply:?}"))
}

/// A value checked against the trading rule `code` names: 422 with that code if it breaks it.
pub(crate) fn rule<T>(value: Unchecked<T>, code: RejectCode) -> Result<T, ApiError> {
    value.check(code).map_err(ApiError::Rejected)
}

/// An optional stop-loss and take-profit, checked against their rules.
pub(crate) fn levels(
    stop_loss: Option<Unchecked<Price>>,
    take_profit: Option<Unchecked<Price>>,
) -> Result<(Option<Price>, Option<Price>), ApiError> {
    Ok((
        stop_loss
            .map(|p| rule(p, RejectCode::InvalidStopLoss))
            .transpose()?,
        take_profit
            .map(|p| rule(p, RejectCode::InvalidTakeProfit))
            .transpose()?,
    ))
}

/// An optional trailing distance, checked against its rule.
fn trailing(distance: Option<Unchecked<Price>>) -> Result<Option<Price>, ApiError> {
    distance
        .map(|d| rule(d, RejectCode::InvalidTrailingDistance))
        .transpose()
}

pub(crate) fn unexpected(accepted: Accepted) -> ApiError {
    ApiError::Internal(format!("unexpected engine reply {accepted:?}"))
}

/// Opens a position at market.
#[utoipa::path(
    post,
    path = "/api/v1/trade/open",
    operation_id = "openPosition",
    tag = "trade",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = OpenRequest,
    responses(
        (status = 201, description = "Opened", body = Wrapped<PositionBody>),
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
async fn open(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<OpenRequest>,
) -> Result<(StatusCode, Json<Wrapped<PositionBody>>), ApiError> {
    let id = command_id(user.0, &headers)?;
    let leverage = rule(body.leverage, RejectCode::InvalidLeverage)?;
    let quantity = rule(body.quantity, RejectCode::InvalidQuantity)?;
    let (stop_loss, take_profit) = levels(body.stop_loss, body.take_profit)?;
    let trailing_distance = trailing(body.trailing_distance)?;
    let command = Command::OpenPosition(OpenPosition {
        trailing_distance,
        user_id: user.0,
        asset: body.asset,
        side: body.side,
        quantity,
        leverage,
        stop_loss,
        take_profit,
        expected_price: body.expected_price,
        max_slippage_bps: body.max_slippage_bps,
    });
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::PositionOpened { position } => Ok((
            StatusCode::CREATED,
            Json(Wrapped {
                position: (&position).into(),
            }),
        )),
        other => Err(unexpected(other)),
    }
}

/// Closes a position, or part of it (`quantity`), at market.
#[utoipa::path(
    post,
    path = "/api/v1/trade/close",
    operation_id = "closePosition",
    tag = "trade",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = CloseRequest,
    responses(
        (status = 200, description = "Closed (a partial close also names what stays open)", body = Closed),
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
async fn close(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CloseRequest>,
) -> Result<Json<Closed>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let quantity = body
        .quantity
        .map(|q| rule(q, RejectCode::InvalidQuantity))
        .transpose()?;
    let command = match quantity {
        Some(quantity) => Command::PartialClose(PartialClose {
            user_id: user.0,
            position_id: body.position_id,
            quantity,
        }),
        None => Command::ClosePosition {
            user_id: user.0,
            position_id: body.position_id,
        },
    };
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::PositionClosed { position } => Ok(Json(Closed {
            position: ClosedBody::new(&position, false),
            remaining: None,
        })),
        Accepted::PositionPartiallyClosed { closed, remaining } => Ok(Json(Closed {
            position: ClosedBody::new(&closed, true),
            remaining: Some((&remaining).into()),
        })),
        other => Err(unexpected(other)),
    }
}

/// Replaces stop-loss, take-profit and trailing distance (null or missing clears one).
#[utoipa::path(
    post,
    path = "/api/v1/trade/modify",
    operation_id = "modifyPosition",
    tag = "trade",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = ModifyRequest,
    responses(
        (status = 200, description = "Modified", body = Wrapped<PositionBody>),
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
async fn modify(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ModifyRequest>,
) -> Result<Json<Wrapped<PositionBody>>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let (stop_loss, take_profit) = levels(body.stop_loss, body.take_profit)?;
    let trailing_distance = trailing(body.trailing_distance)?;
    let command = Command::ModifyPosition(ModifyPosition {
        trailing_distance,
        user_id: user.0,
        position_id: body.position_id,
        stop_loss,
        take_profit,
    });
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::PositionModified { position } => Ok(Json(Wrapped {
            position: (&position).into(),
        })),
        other => Err(unexpected(other)),
    }
}

/// The user's open positions with floating PnL.
#[utoipa::path(
    get,
    path = "/api/v1/trade/open",
    operation_id = "listOpenPositions",
    tag = "trade",
    security(("bearer" = [])),
    params(listing::Params),
    responses(
        (status = 200, description = "Open positions", body = OpenList),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn list_open(
    State(state): State<AppState>,
    user: AuthUser,
    params: Result<axum::extract::Query<listing::Params>, QueryRejection>,
) -> Result<Json<OpenList>, ApiError> {
    let page = listing::requested(params)?;
    let user_id = user.0;
    let query = |page| Query::ListOpenPositions { user_id, page };
    let items = |reply| match reply {
        QueryReply::OpenPositions { positions, next } => {
            Ok((positions.iter().map(OpenBody::from).collect(), next))
        }
        other => Err(unexpected_reply(other)),
    };
    let (positions, next) = listing::list(&state, page, query, items).await?;
    Ok(Json(OpenList { positions, next }))
}
