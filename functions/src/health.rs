//! `GET /healthz` (the process is up), `GET /readyz` (NATS and PostgreSQL answer; JSON of
//! `bus::readiness`, the same shape as every process's) and the
//! OpenAPI document at `GET /api/v1/openapi.json`. Served by the local runner and by every
//! Lambda (so each deployed function can be probed the same way).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use bus::readiness::{Check, Readiness};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::finish;
use crate::state::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
struct Alive {
    #[schema(value_type = String, pattern = "^ok$")]
    status: &'static str,
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

/// Readiness: NATS and PostgreSQL answer (and, in the local runner, the engine holds the
/// writer lease and serves, the feed has fresh quotes, the hub consumes `EVENTS`). The same
/// shape as every process's `/readyz` (`bus::readiness`); 503 with it when a check fails.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "probes",
    responses(
        (status = 200, description = "Ready: every check is ok", body = Readiness),
        (status = 503, description = "Not ready: at least one check failed", body = Readiness),
    )
)]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
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
        Ok(result) => result,
        Err(_) => Err("timed out".to_string()),
    };
    let mut readiness = Readiness::of(vec![
        Check::from_result("nats", verdict(nats)),
        Check::from_result("postgres", verdict(postgres)),
    ]);
    if let Some(more) = state.more_readiness() {
        readiness = readiness.and(more().await);
    }
    let status =
        StatusCode::from_u16(readiness.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    (status, Json(readiness))
}
