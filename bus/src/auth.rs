//! Verification of the platform's session tokens, shared by the HTTP functions' signers and the
//! WebSocket hub: HS256 JWTs signed with `JWT_SECRET`, the user id in `sub`, a required `exp`
//! (no leeway). Anything else (`alg: none`, another algorithm, a bad signature, a past `exp`)
//! is refused.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::types::UserId;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid or expired token")]
pub struct InvalidToken;

/// Checks session tokens against one secret. Build once, share.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

/// What a valid token says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    pub user: UserId,
    /// `exp`: the token is refused from this second (since the epoch) on.
    pub expires_at: u64,
}

#[derive(Deserialize)]
struct Claims {
    sub: UserId,
    exp: u64,
}

/// Seconds since the epoch, the unit of `exp`.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl TokenVerifier {
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The user a valid token names.
    pub fn verify(&self, token: &str) -> Result<UserId, InvalidToken> {
        self.verify_until(token).map(|v| v.user)
    }

    /// The user a valid token names, and until when it is valid.
    pub fn verify_until(&self, token: &str) -> Result<Verified, InvalidToken> {
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|_| InvalidToken)?
            .claims;
        // The library accepts `exp == now` even with no leeway; a token is dead at its `exp`.
        if claims.exp <= now_secs() {
            return Err(InvalidToken);
        }
        Ok(Verified {
            user: claims.sub,
            expires_at: claims.exp,
        })
    }
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenVerifier { .. }") // never print the key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde::Serialize;

    #[derive(Serialize)]
    struct TestClaims {
        sub: String,
        exp: u64,
    }

    fn sign(secret: &[u8], sub: &str, exp: u64) -> String {
        let claims = TestClaims {
            sub: sub.to_string(),
            exp,
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .expect("signs")
    }

    #[test]
    fn accepts_valid_and_refuses_forged_expired_or_junk() {
        let user = "6f1c1a4e-8d1b-4a53-9a7e-0c3f9f1c2b11";
        let future = 4_000_000_000;
        let verifier = TokenVerifier::new(b"secret");
        let good = sign(b"secret", user, future);
        assert_eq!(verifier.verify(&good).expect("valid").to_string(), user);
        assert_eq!(
            verifier.verify(&sign(b"other", user, future)),
            Err(InvalidToken)
        );
        assert_eq!(
            verifier.verify(&sign(b"secret", user, 1)),
            Err(InvalidToken)
        );
        assert_eq!(
            verifier.verify(&sign(b"secret", "bob", future)),
            Err(InvalidToken)
        );
        assert_eq!(verifier.verify("not.a.token"), Err(InvalidToken));
    }
}
