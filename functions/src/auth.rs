//! Authentication: argon2id password hashes and HS256 session tokens (JWT with an expiry).
//!
//! Tokens carry `sub` (the user id), `iat` and `exp` (seconds since the epoch). Verification
//! accepts HS256 only: `alg: none`, other algorithms, a wrong signature, a missing or past
//! `exp` are all `unauthorized`. The WebSocket hub verifies the same tokens with the same
//! `JWT_SECRET`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use bus::UserId;
use bus::auth::TokenVerifier;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::hash_pool::{HashPool, Refused};
use crate::limits::{LimitSettings, VerifiedUser};
use crate::state::AppState;

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: UserId,
    pub iat: u64,
    pub exp: u64,
}

/// A signed token and when it stops being accepted (ms since the epoch).
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at_ms: i64,
}

/// Signs session tokens; checking them is `bus::auth::TokenVerifier`'s job, shared with the
/// WebSocket hub so both apply the same rules.
pub struct TokenKeys {
    encoding: EncodingKey,
    verifier: TokenVerifier,
    ttl: Duration,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret),
            verifier: TokenVerifier::new(secret),
            ttl,
        }
    }

    pub fn issue(&self, user: UserId) -> Result<IssuedToken, ApiError> {
        let iat = now_secs();
        let exp = iat.saturating_add(self.ttl.as_secs().max(1));
        self.sign(&Claims {
            sub: user,
            iat,
            exp,
        })
    }

    /// Signs arbitrary claims (tests use it to make expired tokens).
    pub fn sign(&self, claims: &Claims) -> Result<IssuedToken, ApiError> {
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(|e| ApiError::Internal(format!("signing a token: {e}")))?;
        let expires_at_ms = i64::try_from(claims.exp.saturating_mul(1000)).unwrap_or(i64::MAX);
        Ok(IssuedToken {
            token,
            expires_at_ms,
        })
    }

    /// The user a token names, if it is a valid, unexpired HS256 token signed with our key.
    pub fn verify(&self, token: &str) -> Result<UserId, ApiError> {
        self.verifier
            .verify(token)
            .map_err(|_| ApiError::Unauthorized)
    }
}

/// Argon2id with the crate's default cost, plus a hash of a random password so that a signin
/// for an unknown email costs the same as one with a wrong password.
///
/// Each hash takes 19 MiB for tens of milliseconds, so hashes run on a fixed pool
/// ([`HashPool`]: `HASH_CONCURRENCY` threads, `HASH_QUEUE` waiting); past that a request is
/// refused at once with 503 `unavailable` and `Retry-After` ([`ApiError::Busy`]). A hash keeps
/// its place until it is done, even if its request was dropped meanwhile, so memory stays
/// bounded by the pool whatever clients do.
pub struct PasswordHasher {
    dummy_hash: String,
    pool: HashPool,
}

impl PasswordHasher {
    pub fn new(limits: &LimitSettings) -> Result<Self, String> {
        let dummy = uuid::Uuid::new_v4().to_string();
        Ok(Self {
            dummy_hash: hash_now(&dummy).map_err(|e| e.to_string())?,
            pool: HashPool::new(limits.hash_concurrency, limits.hash_queue)
                .map_err(|e| format!("hashing threads: {e}"))?,
        })
    }

    /// Runs `work` on the pool; [`ApiError::Busy`] at once when it is full.
    async fn bounded<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        self.pool.run(work).await.map_err(|refused| match refused {
            Refused::Full => ApiError::Busy(crate::limits::BUSY_RETRY),
            Refused::Gone => ApiError::Internal("the hashing pool is gone".into()),
        })
    }

    /// Hashes on the pool (argon2 takes tens of milliseconds by design).
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        self.bounded(move || hash_now(&password))
            .await?
            .map_err(|e| ApiError::Internal(format!("hashing: {e}")))
    }

    /// Checks `password` against `stored`, or against the dummy hash when there is no user,
    /// so both paths do the same work. True only for a real match.
    pub async fn verify(&self, password: String, stored: Option<String>) -> Result<bool, ApiError> {
        let exists = stored.is_some();
        let hash = stored.unwrap_or_else(|| self.dummy_hash.clone());
        let matches = self.bounded(move || verify_now(&password, &hash)).await?;
        Ok(exists && matches)
    }
}

fn hash_now(password: &str) -> Result<String, argon2::password_hash::Error> {
    Ok(Argon2::default()
        .hash_password(password.as_bytes())?
        .to_string())
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The signed-in user of a request: the extractor every private route takes. The token must
/// be valid and its user must still exist, checked in PostgreSQL for every request, uncached
/// (concurrent requests share one query: [`crate::users`]), so a deleted user's tokens stop
/// working at once (the price: private routes need PostgreSQL, and answer 503 while it is
/// down).
#[derive(Debug, Clone, Copy)]
pub struct AuthUser(pub UserId);

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // A rate-limited route's token was verified already (`crate::limits::admit`).
        if let Some(VerifiedUser(user)) = parts.extensions.get::<VerifiedUser>().copied() {
            return match state.users().exists(user).await? {
                true => Ok(AuthUser(user)),
                false => Err(ApiError::Unauthorized),
            };
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let user = state.tokens().verify(token)?;
        if !state.users().exists(user).await? {
            return Err(ApiError::Unauthorized);
        }
        Ok(AuthUser(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn keys() -> TokenKeys {
        TokenKeys::new(b"test-secret", Duration::from_secs(60))
    }

    #[test]
    fn a_fresh_token_names_its_user() {
        let user = UserId(uuid::Uuid::new_v4());
        let issued = keys().issue(user).expect("signs");
        assert_eq!(keys().verify(&issued.token).expect("valid"), user);
    }

    #[test]
    fn expired_wrongly_signed_and_unsigned_tokens_are_refused() {
        let user = UserId(uuid::Uuid::new_v4());
        let past = now_secs() - 10;
        let expired = keys()
            .sign(&Claims {
                sub: user,
                iat: past - 60,
                exp: past,
            })
            .expect("signs");
        assert!(matches!(
            keys().verify(&expired.token),
            Err(ApiError::Unauthorized)
        ));

        let other = TokenKeys::new(b"another-secret", Duration::from_secs(60));
        let forged = other.issue(user).expect("signs");
        assert!(matches!(
            keys().verify(&forged.token),
            Err(ApiError::Unauthorized)
        ));

        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(
            format!(r#"{{"sub":"{}","iat":0,"exp":{}}}"#, user, now_secs() + 600).as_bytes(),
        );
        for unsigned in [format!("{header}.{claims}."), format!("{header}.{claims}")] {
            assert!(matches!(
                keys().verify(&unsigned),
                Err(ApiError::Unauthorized)
            ));
        }
        assert!(matches!(
            keys().verify("not.a.token"),
            Err(ApiError::Unauthorized)
        ));
    }

    #[tokio::test]
    async fn passwords_verify_only_against_their_own_hash() {
        let hasher = PasswordHasher::new(&LimitSettings::default()).expect("hasher");
        let hash = hasher.hash("correct horse".into()).await.expect("hash");
        assert!(
            hasher
                .verify("correct horse".into(), Some(hash.clone()))
                .await
                .expect("ok")
        );
        assert!(
            !hasher
                .verify("wrong horse".into(), Some(hash))
                .await
                .expect("ok")
        );
        assert!(
            !hasher
                .verify("correct horse".into(), None)
                .await
                .expect("ok")
        );
    }
}
