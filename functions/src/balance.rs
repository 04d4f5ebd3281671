//! `GET /api/v1/balance` (signed in) -> 200 `{currency, balance, usedMargin, unrealizedPnl,
//! equity, freeMargin, marginLevel}`, read from the engine.

use axum::extract::State;
use axum::{Json, Router};
use bus::{Query, QueryReply};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::AuthUser;
use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;
use crate::trade::{engine_query, unexpected_reply};
use crate::views::BalanceBody;

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(balance))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// Balance, margin and equity of the signed-in user's account.
#[utoipa::path(
    get,
    path = "/api/v1/balance",
    operation_id = "balance",
    tag = "account",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The account", body = BalanceBody),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn balance(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<BalanceBody>, ApiError> {
    match engine_query(&state, Query::GetAccount { user_id: user.0 }).await? {
        QueryReply::Account { account } => Ok(Json((&account).into())),
        other => Err(unexpected_reply(other)),
    }
}
