//! Pending orders through the routers, against the real engine service and persist consumer:
//! place, modify, cancel, list, fill, expire, the order history, idempotency and every new
//! rejection code (partial closes and trailing stops: `partial_close.rs`).

use crate::support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bus::Asset;
use serde_json::{Value, json};
use support::{Platform, code};

const ORDERS: &str = "/api/v1/trade/orders";

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map(|d| d.as_millis() as i64).expect("clock")
}

fn buy_limit(price: &str) -> Value {
    json!({ "asset": "BTC", "side": "buy", "type": "limit", "price": price, "quantity": "0.01", "leverage": 10 })
}

fn len(body: &Value, list: &str) -> usize {
    body[list].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_user_places_modifies_and_cancels_orders_and_one_fills() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let (_, other) = p.user().await;
    let t = Some(token.as_str());
    let expires = now_ms() + 3_600_000;

    let mut first = buy_limit("59000");
    first["stopLoss"] = json!("58000");
    first["expiresAt"] = json!(expires);
    let key = [("idempotency-key", "place-1")];
    let (status, placed) = p
        .call(Method::POST, ORDERS, t, &key, Some(first.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{placed}");
    let order = &placed["order"];
    let id = order["id"].as_u64().expect("id");
    let created = order["createdAt"].as_i64().expect("createdAt");
    assert_eq!(
        order,
        &json!({ "id": id, "asset": "BTC", "side": "buy", "type": "limit", "price": "59000",
                 "quantity": "0.01", "leverage": 10, "stopLoss": "58000", "takeProfit": null,
                 "expiresAt": expires, "status": "pending", "createdAt": created })
    );
    let (status, again) = p.call(Method::POST, ORDERS, t, &key, Some(first)).await;
    assert_eq!(
        (status, &again),
        (StatusCode::CREATED, &placed),
        "a retry gets the first answer"
    );
    let (status, body) = p
        .call(Method::POST, ORDERS, t, &key, Some(buy_limit("58000")))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );

    let sell_stop = json!({ "asset": "BTC", "side": "sell", "type": "stop", "price": "59000", "quantity": "0.02", "leverage": 5 });
    let (status, body) = p.post(ORDERS, t, sell_stop).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stop_id = body["order"]["id"].as_u64().expect("id");
    let (_, listed) = p.get(ORDERS, t).await;
    let ids: Vec<u64> = listed["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["id"].as_u64())
        .collect();
    assert_eq!(
        ids,
        vec![id, stop_id],
        "one placement despite the retry, in id order"
    );

    // Someone else's order is not found, for cancel and modify alike.
    for path in ["/api/v1/trade/orders/cancel", "/api/v1/trade/orders/modify"] {
        let (status, body) = p.post(path, Some(&other), json!({ "orderId": id })).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::NOT_FOUND, "order_not_found"),
            "{path}"
        );
    }
    let (_, theirs) = p.get(ORDERS, Some(&other)).await;
    assert_eq!(theirs["orders"], json!([]));

    let modify = json!({ "orderId": id, "price": "59500", "takeProfit": "65000" });
    let (status, body) = p.post("/api/v1/trade/orders/modify", t, modify).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let m = &body["order"];
    assert_eq!(
        (
            &m["price"],
            &m["stopLoss"],
            &m["takeProfit"],
            &m["expiresAt"],
            &m["status"]
        ),
        (
            &json!("59500"),
            &Value::Null,
            &json!("65000"),
            &Value::Null,
            &json!("pending")
        ),
        "levels and expiry are replaced as a whole"
    );

    let (status, body) = p
        .post(
            "/api/v1/trade/orders/cancel",
            t,
            json!({ "orderId": stop_id }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        (&body["order"]["id"], &body["order"]["status"]),
        (&json!(stop_id), &json!("cancelled"))
    );
    let (status, body) = p
        .post(
            "/api/v1/trade/orders/cancel",
            t,
            json!({ "orderId": stop_id }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "order_not_found")
    );

    // The ask comes down to the limit: the order fills at the tick's ask.
    p.tick(Asset::Btc, "59400.00", "59490.00").await;
    let (_, listed) = p.get(ORDERS, t).await;
    assert_eq!(listed["orders"], json!([]), "{listed}");
    let (_, open) = p.get("/api/v1/trade/open", t).await;
    let position = &open["positions"][0];
    assert_eq!(
        (
            &position["openPrice"],
            &position["quantity"],
            &position["takeProfit"]
        ),
        (&json!("59490.00"), &json!("0.01"), &json!("65000"))
    );
    let position_id = position["id"].clone();

    let history = p
        .get_until("/api/v1/trade/orders/history", &token, |b| {
            len(b, "orders") == 2
        })
        .await;
    let filled = &history["orders"][0];
    assert_eq!(
        (
            &filled["id"],
            &filled["status"],
            &filled["positionId"],
            &filled["cancelReason"]
        ),
        (&json!(id), &json!("filled"), &position_id, &Value::Null),
        "{history}"
    );
    let cancelled = &history["orders"][1];
    assert_eq!(
        (
            &cancelled["id"],
            &cancelled["status"],
            &cancelled["positionId"],
            &cancelled["cancelReason"]
        ),
        (
            &json!(stop_id),
            &json!("cancelled"),
            &Value::Null,
            &json!("user")
        )
    );
    assert_eq!(history["next"], Value::Null);
}

#[tokio::test]
async fn an_order_expires_at_its_time() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let mut order = buy_limit("59000");
    order["expiresAt"] = json!(now_ms() + 500);
    let (status, body) = p.post(ORDERS, Some(&token), order).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Expiry is applied by the first input at or after it: keep logging ticks until then.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, listed) = p.get(ORDERS, Some(&token)).await;
        if listed["orders"] == json!([]) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never expired: {listed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        p.tick(Asset::Btc, "60000.00", "60010.00").await;
    }
    let history = p
        .get_until("/api/v1/trade/orders/history", &token, |b| {
            len(b, "orders") == 1
        })
        .await;
    assert_eq!(history["orders"][0]["cancelReason"], "expired", "{history}");
}

#[tokio::test]
async fn order_rules_are_422_and_malformed_orders_400() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let with = |field: &str, value: Value| {
        let mut body = buy_limit("59000");
        body[field] = value;
        body
    };
    let unprocessable = [
        (buy_limit("60010"), "invalid_order_price"),
        (buy_limit("0"), "invalid_order_price"),
        (buy_limit("59000.001"), "invalid_order_price"),
        (
            json!({ "asset": "BTC", "side": "sell", "type": "stop", "price": "60000", "quantity": "0.01", "leverage": 10 }),
            "invalid_order_price",
        ),
        (with("expiresAt", json!(now_ms() - 1)), "invalid_expiry"),
        (with("expiresAt", json!(1.5)), "invalid_expiry"),
        (with("leverage", json!(1000)), "invalid_leverage"),
        (with("quantity", json!("0.00001")), "invalid_quantity"),
        (with("stopLoss", json!("59500")), "invalid_stop_loss"),
        (with("takeProfit", json!("58000")), "invalid_take_profit"),
    ];
    for (body, expected) in unprocessable {
        let (status, answer) = p.post(ORDERS, t, body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{body}"
        );
    }
    let malformed = [
        with("type", json!("market")),
        with("price", json!(null)),
        with("expiresAt", json!("tomorrow")),
        with("extra", json!(1)),
    ];
    for body in malformed {
        let (status, answer) = p.post(ORDERS, t, body.clone()).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::BAD_REQUEST, "invalid_request"),
            "{body}"
        );
    }
    let (_, listed) = p.get(ORDERS, t).await;
    assert_eq!(listed["orders"], json!([]), "nothing was placed");

    let (_, body) = p.post(ORDERS, t, buy_limit("59000")).await;
    let id = body["order"]["id"].clone();
    let modify = "/api/v1/trade/orders/modify";
    let (status, answer) = p
        .post(modify, t, json!({ "orderId": id, "price": "61000" }))
        .await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_order_price")
    );
    let (status, answer) = p.post(modify, t, json!({ "orderId": 999_999 })).await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::NOT_FOUND, "order_not_found")
    );
    let (status, answer) = p.post(modify, t, json!({ "orderId": "1" })).await;
    assert_eq!(
        (status, code(&answer)),
        (StatusCode::BAD_REQUEST, "invalid_request")
    );
    let (_, listed) = p.get(ORDERS, t).await;
    assert_eq!(
        listed["orders"][0]["price"], "59000",
        "refused changes change nothing"
    );
}

/// Issue 24, item 7: past the pending-order cap a placement is 422 `too_many_orders`; the
/// listing pages through every order exactly once; an order that fills while its account is
/// at the open-position cap is cancelled `too_many_positions` (and persisted so).
#[tokio::test]
async fn orders_past_the_cap_are_422_pages_list_each_once_and_a_fill_past_the_position_cap_is_cancelled()
 {
    let p = Platform::with_engine(|es| {
        es.engine.max_pending_orders = 5;
        es.engine.max_open_positions = 1;
        es.engine.page_size = 2;
    })
    .await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let mut ids = Vec::new();
    for n in 0..5 {
        let (status, body) = p.post(ORDERS, t, buy_limit(&format!("5900{n}"))).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["order"]["id"].clone());
    }
    let (status, body) = p.post(ORDERS, t, buy_limit("58000")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_orders"),
        "{body}"
    );

    let (_, all) = p.get(ORDERS, t).await;
    let listed: Vec<Value> = all["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    assert_eq!((listed, &all["next"]), (ids.clone(), &Value::Null));
    let mut paged = Vec::new();
    let mut query = "?limit=3".to_string();
    for _ in 0..10 {
        let (status, page) = p.get(&format!("{ORDERS}{query}"), t).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        paged.extend(
            page["orders"]
                .as_array()
                .expect("orders")
                .iter()
                .map(|o| o["id"].clone()),
        );
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=3&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ids, "each order once, in placement order");

    // One open position fills the cap: the order that triggers (59004 only) is cancelled.
    let open = json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10 });
    let (status, body) = p.post("/api/v1/trade/open", t, open).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    p.tick(Asset::Btc, "59003.00", "59003.50").await;
    let history = p
        .get_until("/api/v1/trade/orders/history", &token, |b| {
            len(b, "orders") == 1
        })
        .await;
    assert_eq!(
        (
            &history["orders"][0]["id"],
            &history["orders"][0]["cancelReason"]
        ),
        (&ids[4], &json!("too_many_positions")),
        "{history}"
    );
    let (_, left) = p.get(ORDERS, t).await;
    assert_eq!(len(&left, "orders"), 4, "{left}");
}
