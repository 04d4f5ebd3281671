//! `GET /healthz` (the process is up), `GET /readyz` (NATS and PostgreSQL answer) and the
//! OpenAPI document at `GET /api/v1/openapi.json`. Served by the local runner and by every
//! Lambda (so each deployed function can be probed the same way).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::body::finish;
use crate::error::ApiError;
use crate::state::AppState;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(ready))
        .route("/api/v1/openapi.json", get(openapi))
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

async fn openapi() -> Result<Json<Value>, ApiError> {
    crate::openapi::document().map(Json)
}

async fn ready(State(state): State<AppState>) -> Result<(StatusCode, Json<Value>), ApiError> {
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
        (Ok(()), Ok(())) => Ok((
            StatusCode::OK,
            Json(json!({ "status": "ready", "nats": "ok", "postgres": "ok" })),
        )),
        (n, p) => Err(ApiError::Unavailable(format!(
            "nats: {}, postgres: {}",
            n.err().unwrap_or_else(|| "ok".into()),
            p.err().unwrap_or_else(|| "ok".into())
        ))),
    }
}
