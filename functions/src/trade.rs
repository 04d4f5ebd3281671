//! The trade function: `POST /api/v1/trade/open`, `/close`, `/modify`, `GET /trade/open`
//! (from the engine) and `GET /trade/closed` (history from PostgreSQL, see [`crate::history`]).
//!
//! Every `POST` takes an optional `Idempotency-Key`: the engine command id is derived from the
//! user and the key, so a retry gets the first answer and the same key with a different body
//! is 409 `idempotency_key_reused` (the engine's `command_id_reused`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use bus::{
    Accepted, Asset, Command, CommandEnvelope, Leverage, ModifyPosition, OpenPosition, PositionId,
    Price, Quantity, Query, QueryReply, RejectCode, Reply, Side, Unchecked,
};
use serde::{Deserialize, Serialize};

use crate::auth::AuthUser;
use crate::body::{JsonBody, command_id, finish};
use crate::error::{ApiError, engine_error};
use crate::state::AppState;
use crate::views::{ClosedBody, OpenBody, PositionBody};

/// Quantity, leverage and levels are any well-formed number here: one that breaks a trading
/// rule is 422 with the rule's code (as the engine answers), only malformed input is 400.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OpenRequest {
    asset: Asset,
    side: Side,
    quantity: Unchecked<Quantity>,
    leverage: Unchecked<Leverage>,
    #[serde(default)]
    stop_loss: Option<Unchecked<Price>>,
    #[serde(default)]
    take_profit: Option<Unchecked<Price>>,
    #[serde(default)]
    expected_price: Option<Price>,
    #[serde(default)]
    max_slippage_bps: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CloseRequest {
    position_id: PositionId,
}

/// Both levels are replaced; a missing or null level is cleared.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ModifyRequest {
    position_id: PositionId,
    #[serde(default)]
    stop_loss: Option<Unchecked<Price>>,
    #[serde(default)]
    take_profit: Option<Unchecked<Price>>,
}

#[derive(Debug, Serialize)]
struct Wrapped<T> {
    position: T,
}

#[derive(Debug, Serialize)]
struct OpenList {
    positions: Vec<OpenBody>,
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/trade/open", post(open).get(list_open))
        .route("/api/v1/trade/close", post(close))
        .route("/api/v1/trade/modify", post(modify))
        .merge(crate::history::routes())
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// Sends one command and returns the engine's success, or its rejection as an error.
async fn send(state: &AppState, cmd: CommandEnvelope) -> Result<Accepted, ApiError> {
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

/// A value checked against the trading rule `code` names: 422 with that code if it breaks it.
fn rule<T>(value: Unchecked<T>, code: RejectCode) -> Result<T, ApiError> {
    value.check(code).map_err(ApiError::Rejected)
}

/// An optional stop-loss and take-profit, checked against their rules.
fn levels(
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

fn unexpected(accepted: Accepted) -> ApiError {
    ApiError::Internal(format!("unexpected engine reply {accepted:?}"))
}

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
    let command = Command::OpenPosition(OpenPosition {
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

#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn close(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CloseRequest>,
) -> Result<Json<Wrapped<ClosedBody>>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let command = Command::ClosePosition {
        user_id: user.0,
        position_id: body.position_id,
    };
    match send(&state, CommandEnvelope { id, command }).await? {
        Accepted::PositionClosed { position } => Ok(Json(Wrapped {
            position: (&position).into(),
        })),
        other => Err(unexpected(other)),
    }
}

#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn modify(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<ModifyRequest>,
) -> Result<Json<Wrapped<PositionBody>>, ApiError> {
    let id = command_id(user.0, &headers)?;
    let (stop_loss, take_profit) = levels(body.stop_loss, body.take_profit)?;
    let command = Command::ModifyPosition(ModifyPosition {
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

#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn list_open(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<OpenList>, ApiError> {
    let reply = state
        .engine()
        .query(Query::ListOpenPositions { user_id: user.0 })
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    match reply {
        QueryReply::OpenPositions { positions } => Ok(Json(OpenList {
            positions: positions.iter().map(OpenBody::from).collect(),
        })),
        QueryReply::Rejected { rejection } => Err(ApiError::Rejected(rejection)),
        other => Err(ApiError::Internal(format!("unexpected reply {other:?}"))),
    }
}
