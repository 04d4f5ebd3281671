//! `GET /healthz` (the process is up), `GET /readyz` (NATS and PostgreSQL answer) and the
//! OpenAPI document at `GET /api/v1/openapi.json`. Served by the local runner and by every
//! Lambda (so each deployed function can be probed the same way).

use std::time::Duration;

use axum::extract::State;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
struct Alive {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
}

#[derive(Debug, Serialize, ToSchema)]
struct Ready {
    #[schema(value_type = String, pattern = "^ready$")]
    status: &'static str,
    #[schema(value_type = String, pattern = "^ok$")]
    nats: &'static str,
    #[schema(value_type = String, pattern = "^ok$")]
    postgres: &'static str,
}

/// The routes with their OpenAPI operations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(ready))
        .routes(routes!(openapi))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

/// Liveness: the process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "probes",
    responses((status = 200, description = "Alive", body = Alive))
)]
async fn healthz() -> Json<Alive> {
    Json(Alive { status: "ok" })
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// This document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "openapi",
    tag = "probes",
    responses((status = 200, description = "The OpenAPI document", body = Object))
)]
async fn openapi() -> Json<Value> {
    Json(crate::openapi::document().clone())
}

/// Readiness: NATS and PostgreSQL answer.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready", body = Ready),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
async fn ready(State(state): State<AppState>) -> Result<Json<Ready>, ApiError> {
    let nats = async {
        if !state.nats_connected() {
            return Err("not connected".to_string());
        }
        state.nats().flush().await.map_err(|e| e.to_string())
    };
    let postgres = async {
        sqlx::query("SELECT 1")
            .execute(state.db())
            .await
            .map(drop)
            .map_err(|e| e.to_string())
    };
    let (nats, postgres) = tokio::join!(
        tokio::time::timeout(PROBE_TIMEOUT, nats),
        tokio::time::timeout(PROBE_TIMEOUT, postgres)
    );
    let verdict = |r: Result<Result<(), String>, _>| match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("timed out".to_string()),
    };
    match (verdict(nats), verdict(postgres)) {
        (Ok(()), Ok(())) => Ok(Json(Ready {
            status: "ready",
            nats: "ok",
            postgres: "ok",
        })),
        (n, p) => Err(ApiError::Unavailable(format!(
            "nats: {}, postgres: {}",
            n.err().unwrap_or_else(|| "ok".into()),
            p.err().unwrap_or_else(|| "ok".into())
        ))),
    }
}
