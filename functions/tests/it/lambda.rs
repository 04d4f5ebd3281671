//! The Lambda path of every function: an API Gateway HTTP API (v2) event from
//! `tests/events/` is deserialised by `lambda_http`, converted by its adapter (what
//! `lambda_http::run` does per invocation) and served by the function's own router; the
//! API Gateway response is read back. Runs against the real engine service, NATS and
//! PostgreSQL.

use crate::support;

use lambda_http::request::LambdaRequest;
use lambda_http::tower::ServiceExt;
use lambda_http::{Adapter, Context, LambdaEvent};
use serde_json::Value;
use support::Platform;

fn event(name: &str) -> Value {
    let path = format!(
        "{}/tests/events/apigw_v2_{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).expect("event file");
    serde_json::from_str(&text).expect("event json")
}

/// Runs one API Gateway event through `app` the way the Lambda runtime does; returns the
/// response's status and JSON body.
async fn invoke(app: axum::Router, mut event: Value, token: Option<&str>) -> (u16, Value) {
    if let Some(token) = token {
        event["headers"]["authorization"] = Value::String(format!("Bearer {token}"));
    }
    let request: LambdaRequest = serde_json::from_value(event).expect("an API Gateway v2 event");
    let invocation = LambdaEvent::new(request, Context::default());
    let response = Adapter::from(app)
        .oneshot(invocation)
        .await
        .expect("the router is infallible");
    let response = serde_json::to_value(&response).expect("response serialises");
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"].as_str().unwrap_or("null");
    (status, serde_json::from_str(body).expect("JSON body"))
}

#[tokio::test]
async fn every_function_answers_api_gateway_events() {
    let p = Platform::start().await;
    let s = || p.state.clone();

    let (status, body) = invoke(functions::signup::app(s()), event("signup"), None).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["email"], "lambda@example.com");

    let (status, body) = invoke(functions::signin::app(s()), event("signin"), None).await;
    assert_eq!(status, 200, "{body}");
    let token = body["token"].as_str().expect("token").to_string();

    let (status, body) = invoke(functions::balance::app(s()), event("balance"), Some(&token)).await;
    assert_eq!(
        (status, &body["balance"]),
        (200, &Value::from("10000.00")),
        "{body}"
    );
    let (status, body) = invoke(functions::balance::app(s()), event("balance"), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &Value::from("unauthorized"))
    );

    p.tick(bus::Asset::Btc, "60000.00", "60010.00").await;
    let (status, body) = invoke(functions::assets::app(s()), event("assets"), None).await;
    assert_eq!(
        (status, &body["assets"][0]["bid"]),
        (200, &Value::from("60000.00")),
        "{body}"
    );

    let (status, body) = invoke(functions::trade::app(s()), event("trade"), Some(&token)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["position"]["openPrice"], "60010.00");

    let (status, body) = invoke(
        functions::trade::app(s()),
        event("trade_closed"),
        Some(&token),
    )
    .await;
    assert_eq!(
        (status, &body["positions"]),
        (200, &Value::Array(vec![])),
        "{body}"
    );

    // A function's router serves only its own routes.
    let (status, body) = invoke(functions::assets::app(s()), event("balance"), Some(&token)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &Value::from("not_found"))
    );
}

#[tokio::test]
async fn api_gateways_source_ip_keys_the_address_limit_not_the_forwarded_header() {
    let p = Platform::start_tuned(|s| {
        s.limits.auth_address = bus::limits::Rate::of(2, 3600);
    })
    .await;
    let from = |source: &str, forwarded: &str| {
        let mut e = event("signin");
        e["requestContext"]["http"]["sourceIp"] = Value::from(source);
        e["headers"]["x-forwarded-for"] = Value::from(forwarded);
        e
    };
    let app = || functions::signin::app(p.state.clone());
    for n in 0..2 {
        // No such user here: 401, and the forwarded header changes nothing.
        let (status, body) =
            invoke(app(), from("203.0.113.7", &format!("198.51.100.{n}")), None).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = invoke(app(), from("203.0.113.7", "198.51.100.9"), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (429, &Value::from("rate_limited"))
    );
    let (status, body) = invoke(app(), from("203.0.113.8", "203.0.113.7"), None).await;
    assert_eq!(status, 401, "{body}");
}
