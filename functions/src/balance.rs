//! `GET /api/v1/balance` (signed in) -> 200 `{currency, balance, usedMargin, unrealizedPnl,
//! equity, freeMargin, marginLevel}`, read from the engine.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use bus::{Query, QueryReply};

use crate::auth::AuthUser;
use crate::body::finish;
use crate::error::{ApiError, engine_error};
use crate::state::AppState;
use crate::views::BalanceBody;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/balance", get(balance))
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

#[tracing::instrument(skip_all, fields(user_id = %user.0))]
async fn balance(
    State(state): State<AppState>,
    user: AuthUser,
) -> Result<Json<BalanceBody>, ApiError> {
    let reply = state
        .engine()
        .query(Query::GetAccount { user_id: user.0 })
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    match reply {
        QueryReply::Account { account } => Ok(Json((&account).into())),
        QueryReply::Rejected { rejection } => Err(ApiError::Rejected(rejection)),
        other => Err(ApiError::Internal(format!("unexpected reply {other:?}"))),
    }
}
