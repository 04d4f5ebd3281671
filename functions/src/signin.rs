//! `POST /api/v1/auth/signin` `{email, password}` -> 200 `{token, expiresAt, userId}`.
//!
//! An unknown email and a wrong password are the same 401 `invalid_credentials` and cost the
//! same argon2 verification, so the answer's timing does not tell whether an email exists.

use axum::extract::State;
use axum::{Json, Router};
use bus::{TimestampMs, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{JsonBody, finish};
use crate::error::ApiError;
use crate::signup::{MAX_PASSWORD_BYTES, parse_email};
use crate::state::AppState;

// Any strings: a malformed email or password is just wrong credentials (401), never a 400.
#[derive(Debug, Deserialize, ToSchema)]
struct SignInRequest {
    #[schema(examples("me@example.com"))]
    email: String,
    #[schema(examples("correct horse"))]
    password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignedIn {
    token: String,
    /// When the token stops being accepted, ms since the epoch.
    #[schema(value_type = i64)]
    expires_at: TimestampMs,
    user_id: UserId,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signin))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// Exchanges email and password for a session token.
#[utoipa::path(
    post,
    path = "/api/v1/auth/signin",
    operation_id = "signin",
    tag = "auth",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in", body = SignedIn),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::Unavailable),
    )
)]
#[tracing::instrument(skip_all, fields(user_id))]
async fn signin(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<SignInRequest>,
) -> Result<Json<SignedIn>, ApiError> {
    // A malformed email cannot belong to anyone: the same answer as an unknown one.
    let email = parse_email(&body.email).ok();
    // Each email's own budget (its address's is checked before the handler).
    if let Some(email) = &email {
        state.limits().email(email)?;
    }
    let row = match &email {
        Some(email) => {
            sqlx::query("SELECT id, password_hash FROM users WHERE email = $1")
                .bind(email)
                .fetch_optional(state.db())
                .await?
        }
        None => None,
    };
    let (user, hash) = match row {
        Some(row) => {
            let id: uuid::Uuid = row.try_get("id")?;
            let hash: String = row.try_get("password_hash")?;
            (Some(UserId(id)), Some(hash))
        }
        None => (None, None),
    };
    // Oversized passwords never match; they are not hashed (argon2 over megabytes is a DoS).
    let password = if body.password.len() > MAX_PASSWORD_BYTES {
        String::new()
    } else {
        body.password
    };
    let ok = state.passwords().verify(password, hash).await?;
    let user = match user {
        Some(user) if ok => user,
        _ => return Err(ApiError::InvalidCredentials),
    };
    tracing::Span::current().record("user_id", tracing::field::display(user));
    let issued = state.tokens().issue(user)?;
    Ok(Json(SignedIn {
        token: issued.token,
        expires_at: issued.expires_at_ms,
        user_id: user,
    }))
}
