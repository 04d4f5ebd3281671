//! Price alerts through the routes: validation (bad input is 400 and changes nothing), the
//! per-user limit of 50 active, Idempotency-Key retries, cancelling (own alerts only, twice is
//! fine) and the list's order. The firing is in `alerts_fire.rs`, the worker's SIGKILL test in
//! `alerts_kill.rs`.

use crate::support;

use axum::http::StatusCode;
use serde_json::{Value, json};
use support::{Platform, code, insert_user};

const ALERTS: &str = "/api/v1/alerts";
const CANCEL: &str = "/api/v1/alerts/cancel";

async fn token(p: &Platform) -> String {
    let user = insert_user(&p.db.pool).await;
    p.state.tokens().issue(user).expect("token").token
}

fn alert(asset: &str, price: &str, direction: &str) -> Value {
    json!({ "asset": asset, "price": price, "direction": direction })
}

#[tokio::test]
async fn routes_validate_limit_and_answer_retries() {
    let p = Platform::without_engine(|_| {}).await;
    let (me, other) = (token(&p).await, token(&p).await);
    for bad in [
        json!({ "asset": "BTC", "price": "65000", "direction": "sideways" }),
        json!({ "asset": "DOGE", "price": "65000", "direction": "above" }),
        json!({ "asset": "BTC", "price": "0", "direction": "above" }),
        json!({ "asset": "BTC", "price": "-1", "direction": "below" }),
        json!({ "asset": "BTC", "price": 65000, "direction": "below" }),
        json!({ "asset": "BTC", "price": "65000", "direction": "below", "x": 1 }),
        json!({ "asset": "BTC", "direction": "below" }),
    ] {
        let (status, body) = p.post(ALERTS, Some(&me), bad.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad} -> {body}");
    }
    assert_eq!(
        p.post(ALERTS, None, alert("BTC", "1", "above")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        p.get(ALERTS, Some(&me)).await.1,
        json!({ "alerts": [] }),
        "bad input changed nothing"
    );

    let (status, created) = p
        .post(ALERTS, Some(&me), alert("btc", "65000.50", "above"))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let a = &created["alert"];
    assert_eq!(
        (a["asset"].as_str(), a["price"].as_str()),
        (Some("BTC"), Some("65000.50"))
    );
    assert_eq!(
        (a["direction"].as_str(), a["status"].as_str()),
        (Some("above"), Some("active"))
    );
    assert_eq!(
        (&a["triggeredAt"], &a["triggeredPrice"]),
        (&Value::Null, &Value::Null)
    );

    // Idempotency-Key: the same request gets the first answer, another body is 409.
    let key = [("idempotency-key", "alert-1")];
    let body = alert("ETH", "3000", "below");
    let first = p
        .call(
            axum::http::Method::POST,
            ALERTS,
            Some(&me),
            &key,
            Some(body.clone()),
        )
        .await;
    let again = p
        .call(
            axum::http::Method::POST,
            ALERTS,
            Some(&me),
            &key,
            Some(body),
        )
        .await;
    assert_eq!(
        (first.0, again.0),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_eq!(first.1, again.1);
    let reused = p
        .call(
            axum::http::Method::POST,
            ALERTS,
            Some(&me),
            &key,
            Some(alert("ETH", "3001", "below")),
        )
        .await;
    assert_eq!(
        (reused.0, code(&reused.1)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    // Another user's same key is theirs alone.
    let theirs = p
        .call(
            axum::http::Method::POST,
            ALERTS,
            Some(&other),
            &key,
            Some(alert("ETH", "3001", "below")),
        )
        .await;
    assert_eq!(theirs.0, StatusCode::CREATED);

    // At most 50 active: two exist, 48 more fit, the 51st is refused until one is cancelled.
    for i in 0..48 {
        let (status, _) = p
            .post(
                ALERTS,
                Some(&me),
                alert("SOL", &format!("{}", 100 + i), "above"),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
    }
    let (status, body) = p.post(ALERTS, Some(&me), alert("SOL", "1", "above")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "too_many_alerts")
    );
    // A retry of an earlier keyed request still gets its first answer.
    let retry = p
        .call(
            axum::http::Method::POST,
            ALERTS,
            Some(&me),
            &key,
            Some(alert("ETH", "3000", "below")),
        )
        .await;
    assert_eq!((retry.0, &retry.1), (StatusCode::CREATED, &first.1));

    let id = a["id"].clone();
    let (status, body) = p.post(CANCEL, Some(&other), json!({ "alertId": id })).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "alert_not_found"),
        "not theirs"
    );
    for _ in 0..2 {
        let (status, body) = p.post(CANCEL, Some(&me), json!({ "alertId": id })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["alert"]["status"], "cancelled");
    }
    for bad in [
        json!({ "alertId": "1" }),
        json!({ "alertId": -1 }),
        json!({}),
    ] {
        assert_eq!(
            p.post(CANCEL, Some(&me), bad).await.0,
            StatusCode::BAD_REQUEST
        );
    }
    let (status, body) = p
        .post(CANCEL, Some(&me), json!({ "alertId": u64::MAX }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "alert_not_found")
    );
    assert_eq!(
        p.post(ALERTS, Some(&me), alert("SOL", "1", "above"))
            .await
            .0,
        StatusCode::CREATED
    );

    let (_, list) = p.get(ALERTS, Some(&me)).await;
    let list = list["alerts"].as_array().expect("alerts").clone();
    assert_eq!(list.len(), 51);
    assert!(
        list[..50].iter().all(|a| a["status"] == "active"),
        "active first"
    );
    assert_eq!(list[50]["id"], id, "then the cancelled one");
}
