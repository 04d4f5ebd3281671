//! Price alerts (issue 13): `POST /api/v1/alerts` `{asset, price, direction}`,
//! `GET /api/v1/alerts` and `POST /api/v1/alerts/cancel` `{alertId}`, in PostgreSQL only
//! ([`store`]); and the long-lived [`worker`] that fires them from the Redis price stream.
//!
//! An "above" alert fires when the **ask** reaches its price (`ask >= price`), a "below"
//! alert when the **bid** does (`bid <= price`): the side a buyer and a seller would get. It
//! fires once, on the first quote that crosses it (a level already crossed when the alert is
//! made fires on the next quote), and reaches its user as the WebSocket message
//! `{"type":"alert","alert":{…}}`. A user has at most [`MAX_ACTIVE`] active alerts.
//!
//! `POST /alerts` takes an `Idempotency-Key` (scoped to the user, as on the trade commands): a
//! retry gets the first answer, the same key with another body is 409 `idempotency_key_reused`.
//! Cancelling is idempotent by itself (cancelling a cancelled alert answers it again).

pub mod index;
pub mod store;
pub mod worker;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::{Json, Router};
use bus::{Asset, Price, TimestampMs};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::body::{JsonBody, command_id, finish};
use crate::error::ApiError;
use crate::input;
use crate::state::AppState;

/// Most active alerts a user may have.
pub const MAX_ACTIVE: i64 = 50;

/// Which side of the price the alert waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Fires when the ask reaches the price or goes above it.
    Above,
    /// Fires when the bid reaches the price or goes below it.
    Below,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Above => "above",
            Self::Below => "below",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Active,
    Triggered,
    Cancelled,
}

/// An alert as the API and the WebSocket message show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = Alert)]
pub struct AlertBody {
    pub id: i64,
    pub asset: Asset,
    pub direction: Direction,
    /// The level the alert waits for.
    pub price: Price,
    pub status: AlertStatus,
    /// ms since the epoch
    #[schema(value_type = i64)]
    pub created_at: TimestampMs,
    /// When the quote that fired it was made (ms since the epoch); null until it fires.
    #[schema(required = true, value_type = Option<i64>)]
    pub triggered_at: Option<TimestampMs>,
    /// The quote price that fired it (the ask for "above", the bid for "below").
    #[schema(required = true)]
    pub triggered_price: Option<Price>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = NewAlertRequest)]
struct CreateRequest {
    asset: Asset,
    #[serde(deserialize_with = "input::price")]
    #[schema(schema_with = input::positive_decimal)]
    price: Price,
    direction: Direction,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = CancelAlertRequest)]
struct CancelRequest {
    #[serde(deserialize_with = "input::alert_id")]
    #[schema(value_type = u64, minimum = 0)]
    alert_id: u64,
}

/// The `Idempotency-Key` header of `POST /alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
#[allow(dead_code)] // read from the headers; here for the document
struct IdempotencyKey {
    /// Makes the request safe to retry: a retry with the same key and body gets the first
    /// answer; the same key with another body is 409 `idempotency_key_reused`.
    #[serde(rename = "Idempotency-Key")]
    #[param(value_type = String, required = false, pattern = r"^[!-~]{1,255}$", min_length = 1, max_length = 255)]
    key: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertWrapped)]
struct Wrapped {
    alert: AlertBody,
}

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertList)]
struct List {
    /// The active alerts first, then the 100 most recent triggered or cancelled ones, each
    /// group newest first.
    alerts: Vec<AlertBody>,
}

/// The routes with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(cancel))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// Tells the worker an alert changed, so it need not wait for its catch-up. Best effort: the
/// worker's periodic catch-up finds the change anyway.
async fn notify_worker(state: &AppState, id: i64) {
    let subject = state.engine().names().alerts_changed();
    if let Err(e) = state.nats().publish(subject, id.to_string().into()).await {
        tracing::debug!(error = %e, "alerts: change notification not sent");
    }
}

/// Creates a price alert.
#[utoipa::path(
    post,
    path = "/api/v1/alerts",
    operation_id = "createAlert",
    tag = "alerts",
    security(("bearer" = [])),
    params(IdempotencyKey),
    request_body = CreateRequest,
    responses(
        (status = 201, description = "Created (or the first answer to a retry)", body = Wrapped),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn create(
    State(state): State<AppState>,
    user: AuthUser,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateRequest>,
) -> Result<(StatusCode, Json<Wrapped>), ApiError> {
    let key = match headers.contains_key(crate::body::IDEMPOTENCY_KEY) {
        true => Some(command_id(user.0, &headers)?.as_str().to_string()),
        false => None,
    };
    let new = store::NewAlert {
        asset: body.asset,
        direction: body.direction,
        price: body.price,
    };
    let alert = store::create(state.db(), user.0, &new, key.as_deref()).await?;
    notify_worker(&state, alert.id).await;
    Ok((StatusCode::CREATED, Json(Wrapped { alert })))
}

/// The user's alerts: every active one, then the most recent others.
#[utoipa::path(
    get,
    path = "/api/v1/alerts",
    operation_id = "listAlerts",
    tag = "alerts",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The alerts", body = List),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn list(State(state): State<AppState>, user: AuthUser) -> Result<Json<List>, ApiError> {
    let alerts = store::list(state.db(), user.0).await?;
    Ok(Json(List { alerts }))
}

/// Cancels an active alert (a cancelled one is answered as it is).
#[utoipa::path(
    post,
    path = "/api/v1/alerts/cancel",
    operation_id = "cancelAlert",
    tag = "alerts",
    security(("bearer" = [])),
    request_body = CancelRequest,
    responses(
        (status = 200, description = "Cancelled", body = Wrapped),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    JsonBody(body): JsonBody<CancelRequest>,
) -> Result<Json<Wrapped>, ApiError> {
    let not_found = || ApiError::NotFound {
        code: "alert_not_found",
        message: "no such alert of yours".into(),
    };
    let id = i64::try_from(body.alert_id).map_err(|_| not_found())?;
    let alert = store::cancel(state.db(), user.0, id)
        .await?
        .ok_or_else(not_found)?;
    match alert.status {
        AlertStatus::Triggered => Err(ApiError::Conflict {
            code: "alert_not_active",
            message: "this alert has already fired".into(),
        }),
        _ => {
            notify_worker(&state, alert.id).await;
            Ok(Json(Wrapped { alert }))
        }
    }
}
