//! `POST /api/v1/auth/signup` `{email, password}` -> 201 `{userId, email}`.
//!
//! Creates the user in PostgreSQL (argon2 hash) and then the engine account, exactly once:
//! the engine command id is derived from the user id, and the user row is kept when the
//! engine does not answer (the command may be in the log and applied later). A retry of the
//! same signup (same email and password) finds that row and sends the same command again,
//! so it ends with one user and one account and answers 201 with the same user id; another
//! password for a taken email is 409 `email_taken`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use bus::{Accepted, Command, CommandEnvelope, CommandId, RejectCode, Reply, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::body::{JsonBody, finish};
use crate::error::{ApiError, engine_error};
use crate::state::AppState;

pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MAX_EMAIL_BYTES: usize = 254;

// The documented email form is an ASCII subset of what `parse_email` accepts (which also trims
// and lowercases), so every documented email is accepted.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Credentials {
    /// An email address (stored trimmed and lowercased). The pattern is the plain ASCII form;
    /// the server also takes other forms with a local part, `@` and a dotted domain.
    #[schema(
        pattern = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$",
        max_length = 254,
        examples("me@example.com")
    )]
    pub email: String,
    /// 8 characters or more, at most 1024 bytes in UTF-8 (256 characters always fit).
    #[schema(min_length = 8, max_length = 256, examples("correct horse"))]
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
struct SignedUp {
    user_id: UserId,
    email: String,
}

/// The route with its OpenAPI operation.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(signup))
}

pub fn routes() -> Router<AppState> {
    router().into()
}

pub fn app(state: AppState) -> Router {
    finish(routes().with_state(state.clone()), &state)
}

/// An email in the canonical form it is stored and looked up in (trimmed, lowercase).
pub fn parse_email(raw: &str) -> Result<String, ApiError> {
    let email = raw.trim().to_lowercase();
    let invalid = || ApiError::bad_request("invalid_email", "this is not an email address");
    if email.len() > MAX_EMAIL_BYTES || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.')
        && !domain.contains('@')
        && !domain.starts_with('.')
        && !domain.ends_with('.');
    if local.is_empty() || !domain_ok {
        return Err(invalid());
    }
    Ok(email)
}

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("a password has at least {MIN_PASSWORD_CHARS} characters"),
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(ApiError::bad_request(
            "weak_password",
            format!("a password has at most {MAX_PASSWORD_BYTES} bytes"),
        ));
    }
    Ok(())
}

/// Creates a user and their demo account.
#[utoipa::path(
    post,
    path = "/api/v1/auth/signup",
    operation_id = "signup",
    tag = "auth",
    request_body = Credentials,
    responses(
        (status = 201, description = "Created", body = SignedUp),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 409, response = crate::openapi::Conflict),
        (status = 413, response = crate::openapi::PayloadTooLarge),
        (status = 503, response = crate::openapi::Unavailable),
        (status = 504, response = crate::openapi::EngineTimeout),
    )
)]
#[tracing::instrument(skip_all, fields(user_id))]
async fn signup(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Credentials>,
) -> Result<(StatusCode, Json<SignedUp>), ApiError> {
    let email = parse_email(&body.email)?;
    check_password(&body.password)?;
    // A taken email with its password is 201, with another 409: limited like a sign-in.
    state.limits().email(&email)?;
    let user = claim_user(&state, &email, body.password).await?;
    tracing::Span::current().record("user_id", tracing::field::display(user));
    // The user row stays whatever happens here: a retry finds it and sends the same command.
    create_account(&state, user).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedUp {
            user_id: user,
            email,
        }),
    ))
}

/// The user this signup is about: a new row, or (a retry of the same signup) the row an
/// earlier attempt with the same email and password left. Another password is `email_taken`.
async fn claim_user(state: &AppState, email: &str, password: String) -> Result<UserId, ApiError> {
    let taken = || ApiError::Conflict {
        code: "email_taken",
        message: "an account with this email already exists".into(),
    };
    if let Some((user, hash)) = find_user(state, email).await? {
        return match state.passwords().verify(password, Some(hash)).await? {
            true => Ok(user),
            false => Err(taken()),
        };
    }
    let user = UserId(uuid::Uuid::new_v4());
    let hash = state.passwords().hash(password.clone()).await?;
    let inserted = sqlx::query(
        "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) ON CONFLICT (email) DO NOTHING",
    )
    .bind(user.0)
    .bind(email)
    .bind(&hash)
    .execute(state.db())
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(user);
    }
    // A concurrent attempt inserted first: the same signup if the password matches.
    let Some((user, hash)) = find_user(state, email).await? else {
        return Err(taken());
    };
    match state.passwords().verify(password, Some(hash)).await? {
        true => Ok(user),
        false => Err(taken()),
    }
}

async fn find_user(state: &AppState, email: &str) -> Result<Option<(UserId, String)>, ApiError> {
    let row: Option<(uuid::Uuid, String)> =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE email = $1")
            .bind(email)
            .fetch_optional(state.db())
            .await?;
    Ok(row.map(|(id, hash)| (UserId(id), hash)))
}

/// Creates the user's engine account, exactly once however often it is retried: the command
/// id is derived from the user id, so a retry is answered with the first reply (or, after the
/// engine's idempotency window, `account_exists`, which means the same thing here).
async fn create_account(state: &AppState, user: UserId) -> Result<(), ApiError> {
    let id = CommandId::new(format!("signup-{user}")).map_err(|e| ApiError::Internal(e.0))?;
    let cmd = CommandEnvelope {
        id,
        command: Command::CreateAccount { user_id: user },
    };
    let reply = state
        .engine()
        .send(cmd)
        .await
        .map_err(|e| engine_error(e, state.nats_connected()))?;
    match reply {
        Reply::Accepted(Accepted::AccountCreated { .. }) => Ok(()),
        Reply::Rejected(r) if r.code == RejectCode::AccountExists => Ok(()),
        Reply::Accepted(other) => Err(ApiError::Internal(format!("unexpected reply {other:?}"))),
        Reply::Rejected(r) => Err(ApiError::Internal(format!("account not created: {r}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            parse_email("  Ann@Example.COM ").expect("ok"),
            "ann@example.com"
        );
        for bad in [
            "", "ann", "@x.io", "ann@", "ann@x", "a b@x.io", "ann@.x", "a@b@c.io",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
        assert!(parse_email(&format!("{}@x.io", "a".repeat(260))).is_err());
    }

    #[test]
    fn passwords_need_eight_characters() {
        assert!(check_password("1234567").is_err());
        assert!(check_password("12345678").is_ok());
        assert!(check_password("ééééééé").is_err());
        assert!(check_password(&"x".repeat(2000)).is_err());
    }
}
