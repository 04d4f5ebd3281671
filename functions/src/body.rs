//! Parsing at the edge: JSON bodies into typed requests, the `Idempotency-Key` header into an
//! engine command id, and the layers every function shares (body limit, JSON 404/405).

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, Request};
use axum::http::{HeaderMap, StatusCode};
use bus::{CommandId, UserId};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body parsed into `T`. Malformed JSON is 400 `invalid_json`; well-formed JSON that
/// is not a valid `T` (missing field, wrong type, unknown asset, unknown field…) is 400
/// `invalid_request` with serde's message; a body over the limit is 413. (A well-formed number
/// that breaks a trading rule is not refused here: see [`bus::Unchecked`].)
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn bytes_rejection(e: BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::bad_request("invalid_request", e.body_text())
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    value.map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request("invalid_json", format!("malformed JSON: {e}"))
            }
            Category::Data => ApiError::bad_request("invalid_request", e.to_string()),
        }
    })
}

/// The header that makes a trade request safe to retry.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// The engine command id of a request: derived from the user and their `Idempotency-Key`
/// (so two users' keys never collide, and a retry maps to the same id), or random without one.
pub fn command_id(user: UserId, headers: &HeaderMap) -> Result<CommandId, ApiError> {
    let Some(raw) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(CommandId::random());
    };
    let key = raw
        .to_str()
        .ok()
        .filter(|k| {
            !k.is_empty()
                && k.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && k.bytes().all(|b| b.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                format!("Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} visible ASCII characters"),
            )
        })?;
    let mut hasher = Sha256::new();
    hasher.update(user.0.as_bytes());
    hasher.update(key.as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    CommandId::new(format!("idem-{hex}")).map_err(|e| ApiError::Internal(e.to_string()))
}

/// The layers every function's router gets: the body size limit, JSON answers for unknown
/// routes and methods, and the request id, trace and metrics layers ([`crate::observe`]).
pub fn finish(router: Router, state: &AppState) -> Router {
    let router = router
        .fallback(|| async {
            ApiError::NotFound {
                code: "not_found",
                message: "no such route".into(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(state.body_limit()));
    crate::observe::layers(router, state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_key(key: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(IDEMPOTENCY_KEY, HeaderValue::from_str(key).expect("header"));
        h
    }

    #[test]
    fn keys_are_scoped_to_their_user() {
        let a = UserId(uuid::Uuid::new_v4());
        let b = UserId(uuid::Uuid::new_v4());
        let id_a = command_id(a, &with_key("k1")).expect("id");
        assert_eq!(id_a, command_id(a, &with_key("k1")).expect("id"));
        assert_ne!(id_a, command_id(b, &with_key("k1")).expect("id"));
        assert_ne!(id_a, command_id(a, &with_key("k2")).expect("id"));
        assert_ne!(
            command_id(a, &HeaderMap::new()).expect("id"),
            command_id(a, &HeaderMap::new()).expect("id")
        );
        assert!(command_id(a, &with_key(&"x".repeat(256))).is_err());
    }

    #[test]
    fn json_errors_are_told_apart() {
        let syntax = parse_json::<serde_json::Value>(b"{\"a\":").expect_err("eof");
        assert_eq!(syntax.status_and_code().1, "invalid_json");
        let data = parse_json::<bus::Side>(b"\"long\"").expect_err("data");
        assert_eq!(data.status_and_code().1, "invalid_request");
        let trailing = parse_json::<bus::Side>(b"\"buy\" x").expect_err("trailing");
        assert_eq!(trailing.status_and_code().1, "invalid_json");
    }
}
