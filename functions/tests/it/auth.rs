//! Signup, signin and the bearer tokens, against the real engine service, NATS and PostgreSQL.

use crate::support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::http::{Method, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use functions::auth::{Claims, TokenKeys};
use serde_json::json;
use support::{Platform, code};

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

#[tokio::test]
async fn signup_creates_the_user_and_the_engine_account() {
    let p = Platform::start().await;
    let creds = json!({ "email": "  Ann@Example.com ", "password": "long enough" });
    let (status, body) = p.post("/api/v1/auth/signup", None, creds).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "ann@example.com");
    let stored: (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE email = $1")
        .bind("ann@example.com")
        .fetch_one(&p.db.pool)
        .await
        .expect("user row");
    assert!(stored.0.starts_with("$argon2id$"), "hashed with argon2id");

    let again = json!({ "email": "ann@example.com", "password": "another one" });
    let (status, body) = p.post("/api/v1/auth/signup", None, again).await;
    assert_eq!((status, code(&body)), (StatusCode::CONFLICT, "email_taken"));

    let (status, body) = p
        .post(
            "/api/v1/auth/signin",
            None,
            json!({ "email": "ANN@example.com", "password": "long enough" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["token"].as_str().expect("token");
    assert!(body["expiresAt"].as_i64().expect("expiresAt") > 0);
    let (status, balance) = p.get("/api/v1/balance", Some(token)).await;
    assert_eq!(status, StatusCode::OK, "{balance}");
    assert_eq!(balance["balance"], "10000.00");
}

#[tokio::test]
async fn signup_refuses_bad_emails_and_weak_passwords() {
    let p = Platform::start().await;
    let cases = [
        (
            json!({ "email": "not-an-email", "password": "long enough" }),
            "invalid_email",
        ),
        (
            json!({ "email": "a@b.io", "password": "short" }),
            "weak_password",
        ),
        (json!({ "email": "a@b.io" }), "invalid_request"),
        (
            json!({ "email": 42, "password": "long enough" }),
            "invalid_request",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = p.post("/api/v1/auth/signup", None, body).await;
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, expected));
    }
    let users: (i64,) = sqlx::query_as("SELECT count(*) FROM users")
        .fetch_one(&p.db.pool)
        .await
        .expect("count");
    assert_eq!(users.0, 0, "nothing was created");
}

#[tokio::test]
async fn signin_does_not_tell_unknown_emails_from_wrong_passwords() {
    let p = Platform::start().await;
    p.post(
        "/api/v1/auth/signup",
        None,
        json!({ "email": "bob@example.com", "password": "right password" }),
    )
    .await;
    let mut timings = Vec::new();
    for (email, password) in [
        ("bob@example.com", "wrong password"),
        ("nobody@example.com", "right password"),
    ] {
        let started = Instant::now();
        let (status, body) = p
            .post(
                "/api/v1/auth/signin",
                None,
                json!({ "email": email, "password": password }),
            )
            .await;
        timings.push(started.elapsed());
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_credentials")
        );
        assert_eq!(body["error"]["message"], "wrong email or password");
    }
    // Both paths run one argon2 verification: an unknown email is not answered much faster.
    assert!(
        timings[1] * 3 > timings[0],
        "unknown email {:?} vs wrong password {:?}",
        timings[1],
        timings[0]
    );
}

#[tokio::test]
async fn private_routes_refuse_missing_and_bad_tokens() {
    let p = Platform::start().await;
    let (user, good) = p.user().await;
    let user: bus::UserId = user.parse().expect("user id");
    let keys = TokenKeys::new(p.settings.jwt_secret.as_bytes(), Duration::from_secs(60));
    let expired = keys
        .sign(&Claims {
            sub: user,
            iat: now_secs() - 120,
            exp: now_secs() - 60,
        })
        .expect("signs")
        .token;
    let forged = TokenKeys::new(b"someone else's key", Duration::from_secs(60))
        .issue(user)
        .expect("signs")
        .token;
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(format!(
        r#"{{"sub":"{user}","iat":0,"exp":{}}}"#,
        now_secs() + 600
    ));
    let unsigned = format!("{none_header}.{claims}.");
    for bad in [
        None,
        Some("garbage"),
        Some(expired.as_str()),
        Some(forged.as_str()),
        Some(unsigned.as_str()),
    ] {
        for (method, path) in [
            (Method::GET, "/api/v1/balance"),
            (Method::GET, "/api/v1/trade/open"),
            (Method::GET, "/api/v1/trade/closed"),
        ] {
            let (status, body) = p.call(method, path, bad, &[], None).await;
            assert_eq!(
                (status, code(&body)),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{path} {bad:?}"
            );
        }
        let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
        let (status, _) = p.post("/api/v1/trade/open", bad, open).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = p
        .call(
            Method::GET,
            "/api/v1/balance",
            None,
            &[("authorization", &format!("Basic {good}"))],
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "only Bearer is accepted");
    let (status, _) = p.get("/api/v1/balance", Some(&good)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_token_for_a_user_without_an_account_is_account_not_found() {
    let p = Platform::start().await;
    let (_, token) = p.user_without_account().await;
    let (status, body) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "account_not_found")
    );
}

#[tokio::test]
async fn a_deleted_users_token_is_refused() {
    let p = Platform::start().await;
    let (user, token) = p.user().await;
    let (status, body) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(uuid::Uuid::parse_str(&user).expect("uuid"))
        .execute(&p.db.pool)
        .await
        .expect("delete");
    for (method, path) in [
        (Method::GET, "/api/v1/balance"),
        (Method::GET, "/api/v1/trade/open"),
        (Method::GET, "/api/v1/trade/closed"),
    ] {
        let (status, body) = p.call(method, path, Some(&token), &[], None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized"),
            "{path}"
        );
    }
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let (status, body) = p.post("/api/v1/trade/open", Some(&token), open).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthorized")
    );
    // A token for a user that never existed is refused the same way.
    let ghost = bus::UserId(uuid::Uuid::new_v4());
    let token = p.state.tokens().issue(ghost).expect("signs").token;
    let (status, _) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
