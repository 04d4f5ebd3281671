//! Bad input, unknown routes, oversized bodies, health, and what clients see when NATS,
//! PostgreSQL or the engine is missing: 4xx with a code, 503 `unavailable`, 504
//! `engine_timeout`, never a 500.

use crate::support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use functions::{AppState, Settings};
use serde_json::json;
use support::{Platform, call, code};

/// A TCP port on 127.0.0.1 that nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

#[tokio::test]
async fn malformed_and_invalid_bodies_are_400_and_change_nothing() {
    let p = Platform::start().await;
    p.tick(bus::Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let raw = |body: &str| {
        let (p, body) = (&p, body.to_string());
        async move {
            call(
                &p.app,
                Method::POST,
                "/api/v1/trade/open",
                t,
                &[],
                Some(body),
            )
            .await
        }
    };
    for (body, expected) in [
        ("{\"asset\": ", "invalid_json"),
        ("not json", "invalid_json"),
        ("", "invalid_json"),
        (
            r#"{"asset":"DOGE","side":"buy","quantity":"1","leverage":1}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"long","quantity":"1","leverage":1}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":"1e400","leverage":1}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":1e400,"leverage":1}"#,
            "invalid_json",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":"0.01","leverage":"10"}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":true,"leverage":10}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":"0.01","leverage":10,"stopLoss":"x"}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":"0.01","leverage":10,"extra":1}"#,
            "invalid_request",
        ),
        (
            r#"{"asset":"BTC","side":"buy","quantity":"0.01","leverage":10,"maxSlippageBps":-1}"#,
            "invalid_request",
        ),
        (r#"[1,2,3]"#, "invalid_request"),
    ] {
        let (status, answer) = raw(body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, expected),
            "{body}"
        );
    }
    for (path, body) in [
        ("/api/v1/trade/close", json!({ "positionId": "abc" })),
        ("/api/v1/trade/close", json!({ "positionId": -1 })),
        (
            "/api/v1/trade/modify",
            json!({ "positionId": 1, "stopLoss": "1e3" }),
        ),
    ] {
        let (status, answer) = p.post(path, t, body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_request")
        );
    }
    let (_, open) = p.get("/api/v1/trade/open", t).await;
    assert_eq!(open["positions"], json!([]), "nothing was opened");
}

#[tokio::test]
async fn huge_bodies_unknown_routes_and_wrong_methods() {
    let p = Platform::start().await;
    let huge = format!(
        r#"{{"email":"{}@x.io","password":"long enough"}}"#,
        "a".repeat(10_000)
    );
    let (status, body) = call(
        &p.app,
        Method::POST,
        "/api/v1/auth/signup",
        None,
        &[],
        Some(huge),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let (status, body) = p.get("/api/v1/nope", None).await;
    assert_eq!((status, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    let (status, body) = p
        .call(Method::DELETE, "/api/v1/balance", None, &[], None)
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, body) = p.get("/api/v1/auth/signup", None).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let p = Platform::start().await;
    let (status, body) = p.get("/healthz", None).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let (status, body) = p.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"][1], json!({ "name": "postgres", "ok": true }));
}

#[tokio::test]
async fn no_engine_is_504_for_commands_and_503_for_queries() {
    let p = Platform::without_engine(|s| s.engine_timeout = Duration::from_millis(300)).await;
    let (_, token) = p.user_without_account().await;
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let (status, body) = p.post("/api/v1/trade/open", Some(&token), open).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "engine_timeout")
    );
    assert_eq!(
        body["error"]["message"],
        "the engine did not answer in time"
    );
    let creds = json!({ "email": "late@example.com", "password": "long enough" });
    let (status, body) = p.post("/api/v1/auth/signup", None, creds).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::GATEWAY_TIMEOUT, "engine_timeout")
    );
    let users: (i64,) =
        sqlx::query_as("SELECT count(*) FROM users WHERE email = 'late@example.com'")
            .fetch_one(&p.db.pool)
            .await
            .expect("count");
    assert_eq!(
        users.0, 1,
        "a signup the engine did not confirm is kept for its retry (tests/outage.rs)"
    );
    // Nobody subscribes to queries: NATS says "no responders" at once.
    let (status, body) = p.get("/api/v1/balance", Some(&token)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    assert_eq!(
        body["error"]["message"],
        "a dependency is unavailable, retry later"
    );
}

#[tokio::test]
async fn nats_or_postgres_unreachable_is_503() {
    let db = migrations::TestDatabase::create().await.expect("db");
    let base = support::test_settings(&db);

    let no_nats = Settings {
        nats_url: format!("nats://127.0.0.1:{}", closed_port().await),
        engine_timeout: Duration::from_millis(500),
        ..base.clone()
    };
    let state = AppState::connect(&no_nats).await.expect("connects lazily");
    let app = functions::api(state.clone());
    let user = support::insert_user(&db.pool).await;
    let token = state.tokens().issue(user).expect("token").token;
    let (status, body) = call(
        &app,
        Method::GET,
        "/api/v1/balance",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    );
    let open =
        json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 }).to_string();
    let (status, body) = call(
        &app,
        Method::POST,
        "/api/v1/trade/open",
        Some(&token),
        &[],
        Some(open),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{body}"
    );
    let (status, _) = call(&app, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    let no_pg = Settings {
        database_url: format!(
            "postgres://postgres@127.0.0.1:{}/postgres",
            closed_port().await
        ),
        db_acquire_timeout: Duration::from_millis(500),
        ..base
    };
    let state = AppState::connect(&no_pg).await.expect("connects lazily");
    let app = functions::api(state.clone());
    let creds = json!({ "email": "pg@example.com", "password": "long enough" }).to_string();
    for path in ["/api/v1/auth/signup", "/api/v1/auth/signin"] {
        let (status, body) = call(&app, Method::POST, path, None, &[], Some(creds.clone())).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            "{path}"
        );
    }
    let token = state
        .tokens()
        .issue(bus::UserId(uuid::Uuid::new_v4()))
        .expect("token")
        .token;
    let (status, _) = call(
        &app,
        Method::GET,
        "/api/v1/trade/closed",
        Some(&token),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, body) = call(&app, Method::GET, "/readyz", None, &[], None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(
        (
            &body["status"],
            &body["checks"][1]["name"],
            &body["checks"][1]["ok"]
        ),
        (&json!("not_ready"), &json!("postgres"), &json!(false)),
        "{body}"
    );
}
