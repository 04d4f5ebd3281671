//! The one error type of the HTTP API and its mapping to a status and the body
//! `{"error": {"code", "message"}}`, in one place. 4xx messages are safe to show; 5xx bodies
//! are opaque and their cause is logged here.

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bus::nats::BusError;
use bus::{RejectCode, Rejection};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is invalid; `code` says which rule.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401 `unauthorized`: missing, malformed, expired or wrongly signed token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 401 `invalid_credentials`: unknown email or wrong password (not told apart).
    #[error("wrong email or password")]
    InvalidCredentials,
    /// 404: no such route or resource.
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405 `method_not_allowed`.
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// 409: conflicts with existing state (`email_taken`, `idempotency_key_reused`).
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 413 `payload_too_large`.
    #[error("the request body is too large")]
    PayloadTooLarge,
    /// 422: a well-formed request whose values together break a rule of the route (a range
    /// too long for its interval); `code` says which.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// The engine refused a command: 422 with its code (some codes map elsewhere).
    #[error("{0}")]
    Rejected(Rejection),
    /// 503 `unavailable`: NATS, PostgreSQL or the engine is not reachable. Cause is logged.
    #[error("a dependency is unavailable: {0}")]
    Unavailable(String),
    /// 504 `engine_timeout`.
    #[error("the engine did not answer in time")]
    EngineTimeout,
    /// 500 `internal`: a bug or an unexpected answer. Cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
    /// 429 `rate_limited`: over a rate limit (`crate::limits`); `Retry-After` says when the
    /// budget has room again.
    #[error("too many requests; retry after {} s", bus::limits::retry_after_secs(*.0))]
    RateLimited(std::time::Duration),
    /// 503 `unavailable` with `Retry-After`: this process is too busy for the request now
    /// (password hashing's queue is full); nothing was done.
    #[error("busy")]
    Busy(std::time::Duration),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            Self::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            Self::Rejected(r) => rejection_status(r.code),
            Self::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::EngineTimeout => (StatusCode::GATEWAY_TIMEOUT, "engine_timeout"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            Self::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Busy(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }

    /// What the client is told: the 4xx message, or a fixed text for 5xx.
    fn public_message(&self) -> String {
        match self {
            Self::Rejected(r) if r.code == RejectCode::CommandIdReused => {
                "this Idempotency-Key was already used for a different request".into()
            }
            Self::Rejected(r) if r.code == RejectCode::CommandIdExpired => {
                "this Idempotency-Key's request was applied, but too long ago (or too many \
                 requests of this account ago) for its first answer to be given again; \
                 check the state (e.g. GET /api/v1/trade/open) and use a new key"
                    .into()
            }
            Self::Rejected(r) => r.message.clone(),
            Self::Unavailable(_) => "a dependency is unavailable, retry later".into(),
            Self::Busy(_) => "the server is busy, retry later".into(),
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }
}

fn rejection_status(code: RejectCode) -> (StatusCode, &'static str) {
    match code {
        RejectCode::PositionNotFound | RejectCode::AccountNotFound | RejectCode::OrderNotFound => {
            (StatusCode::NOT_FOUND, code.as_str())
        }
        RejectCode::CommandIdReused => (StatusCode::CONFLICT, "idempotency_key_reused"),
        RejectCode::AccountExists => (StatusCode::CONFLICT, code.as_str()),
        RejectCode::CommandIdExpired => (StatusCode::CONFLICT, "idempotency_key_expired"),
        // `price_stale` too, like `no_price`: the engine did answer (and its Idempotency-Key
        // keeps that answer), so it is no 503; the client retries with a new key once the
        // price is fresh again.
        _ => (StatusCode::UNPROCESSABLE_ENTITY, code.as_str()),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        // A full hashing queue is load, not a fault: not one error line per refused request.
        if status.is_server_error() && !matches!(self, Self::Busy(_)) {
            tracing::error!(code, cause = %self, "request failed");
        }
        let body = json!({ "error": { "code": code, "message": self.public_message() } });
        let mut response = (status, Json(body)).into_response();
        // Over a limit or a dependency down for now: say when a retry is worth it.
        let retry_after = match self {
            Self::RateLimited(wait) | Self::Busy(wait) => Some(bus::limits::retry_after_secs(wait)),
            _ if status == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<BusError> for ApiError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Timeout => Self::EngineTimeout,
            BusError::Unavailable(cause) => Self::Unavailable(cause),
            BusError::Protocol(cause) => Self::Internal(cause),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if is_unavailable(&e) {
            Self::Unavailable(format!("postgres: {e}"))
        } else {
            Self::Internal(format!("postgres: {e}"))
        }
    }
}

/// True when a PostgreSQL error says the database is unreachable, shutting down or out of
/// connections (worth a 503 and a retry), rather than a bug or bad data. The one place that
/// decides it: the HTTP functions and the `persist` event function both ask here.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::BeginFailed
        // The server closed the connection in the middle of a message.
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// SQLSTATEs of a database that is not there for now: class 08 (connection exception),
/// 57P01..57P03 (admin/crash shutdown, cannot connect now), 53300 (too many connections).
fn unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "53300")
}

/// Maps a failed engine call, telling a timeout while NATS is down (503) from an engine that
/// is merely slow or absent (504).
pub fn engine_error(e: BusError, nats_connected: bool) -> ApiError {
    match e {
        BusError::Timeout if !nats_connected => {
            ApiError::Unavailable("NATS is not connected".into())
        }
        other => other.into(),
    }
}
