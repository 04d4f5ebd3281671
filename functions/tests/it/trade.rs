//! The trade function end to end through the routers: open, list, modify, close, history,
//! idempotency and the engine's rejections, against the real engine service.

use crate::support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use bus::Asset;
use serde_json::{Value, json};
use support::{Platform, code};

fn open_btc(quantity: &str, leverage: u32) -> Value {
    json!({ "asset": "BTC", "side": "buy", "quantity": quantity, "leverage": leverage })
}

/// Waits until persist has written `n` closed positions for the token's user.
async fn closed_page(p: &Platform, token: &str, query: &str, n: usize) -> Value {
    for _ in 0..300 {
        let (status, body) = p
            .get(&format!("/api/v1/trade/closed{query}"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["positions"].as_array().map_or(0, Vec::len) >= n {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("persist never wrote {n} closed positions");
}

#[tokio::test]
async fn a_user_opens_modifies_and_closes_and_sees_the_history() {
    let p = Platform::start().await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());

    let (status, body) = p.post("/api/v1/trade/open", t, open_btc("0.01", 10)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "no_price")
    );

    let (_, assets) = p.get("/api/v1/assets", None).await;
    assert_eq!(assets["assets"][0]["symbol"], "BTC");
    assert_eq!(assets["assets"][0]["bid"], Value::Null);
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (status, assets) = p.get("/api/v1/assets", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(assets["assets"][0]["ask"], "60010.00");
    assert_eq!(assets["assets"][0]["maxLeverage"], 100);

    let (status, body) = p.post("/api/v1/trade/open", t, open_btc("0.01", 10)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let position = &body["position"];
    assert_eq!(position["openPrice"], "60010.00");
    assert_eq!(position["margin"], "60.01");
    let id = position["id"].as_u64().expect("id");

    let (_, balance) = p.get("/api/v1/balance", t).await;
    assert_eq!(balance["currency"], "USD");
    assert_eq!(balance["usedMargin"], "60.01");
    assert_eq!(balance["freeMargin"], "9939.99");

    let (status, body) = p
        .post(
            "/api/v1/trade/modify",
            t,
            json!({ "positionId": id, "stopLoss": "55000", "takeProfit": "70000" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["position"]["stopLoss"], "55000");

    p.tick(Asset::Btc, "61000.00", "61010.00").await;
    let (_, open) = p.get("/api/v1/trade/open", t).await;
    assert_eq!(open["positions"][0]["currentPrice"], "61000.00");
    assert_eq!(open["positions"][0]["unrealizedPnl"], "9.90");

    let (status, body) = p
        .post("/api/v1/trade/close", t, json!({ "positionId": id }))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["position"]["closePrice"], "61000.00");
    assert_eq!(body["position"]["realizedPnl"], "9.90");
    assert_eq!(body["position"]["closeReason"], "manual");
    assert_eq!(body["position"]["partial"], false);
    assert!(body.get("remaining").is_none(), "a full close: {body}");

    let (status, body) = p
        .post("/api/v1/trade/close", t, json!({ "positionId": id }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "position_not_found")
    );

    let page = closed_page(&p, &token, "", 1).await;
    assert_eq!(page["positions"][0]["id"], id);
    assert_eq!(page["positions"][0]["realizedPnl"], "9.90");
    assert_eq!(page["positions"][0]["stopLoss"], "55000");
    assert_eq!(page["next"], Value::Null);
}

#[tokio::test]
async fn users_only_touch_their_own_positions() {
    let p = Platform::start().await;
    p.tick(Asset::Eth, "3000.00", "3001.00").await;
    let (_, alice) = p.user().await;
    let (_, bob) = p.user().await;
    let open = json!({ "asset": "ETH", "side": "sell", "quantity": "1", "leverage": 5 });
    let (status, body) = p.post("/api/v1/trade/open", Some(&alice), open).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["position"]["id"].clone();
    let (status, body) = p
        .post(
            "/api/v1/trade/close",
            Some(&bob),
            json!({ "positionId": id }),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::NOT_FOUND, "position_not_found")
    );
    let modify = json!({ "positionId": id, "stopLoss": null, "takeProfit": null });
    let (status, _) = p.post("/api/v1/trade/modify", Some(&bob), modify).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, open) = p.get("/api/v1/trade/open", Some(&bob)).await;
    assert_eq!(open["positions"], json!([]));
    let (_, open) = p.get("/api/v1/trade/open", Some(&alice)).await;
    assert_eq!(open["positions"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_answer_and_refuses_another_body() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let (_, other) = p.user().await;
    let key = [("idempotency-key", "order-1")];
    let send = |token: String, body: Value| {
        let p = &p;
        async move {
            p.call(
                Method::POST,
                "/api/v1/trade/open",
                Some(&token),
                &key,
                Some(body),
            )
            .await
        }
    };
    let (s1, first) = send(token.clone(), open_btc("0.01", 10)).await;
    let (s2, retry) = send(token.clone(), open_btc("0.01", 10)).await;
    assert_eq!((s1, s2), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first, retry, "the retry gets the first answer");
    let (_, open) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(
        open["positions"].as_array().map(Vec::len),
        Some(1),
        "traded once"
    );

    let (status, body) = send(token.clone(), open_btc("0.02", 10)).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );

    let (status, body) = send(other.clone(), open_btc("0.02", 10)).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another user's same key is theirs: {body}"
    );

    let long = "k".repeat(300);
    let (status, body) = p
        .call(
            Method::POST,
            "/api/v1/trade/open",
            Some(&token),
            &[("idempotency-key", &long)],
            Some(open_btc("0.01", 10)),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_idempotency_key")
    );
}

/// Issue 8, defect 1: a retry of the refused request is a duplicate in JetStream; its answer
/// must name the command, not be whatever the key's first request got. Open A with K, open B
/// with K (409), B again (409, not 201 with A's position); a modify then opens under one key
/// (409, not 500).
#[tokio::test]
async fn a_reused_key_stays_a_conflict_however_often_it_is_retried() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let send = |path: &'static str, key: &'static str, body: Value| {
        let (p, token) = (&p, token.clone());
        async move {
            let key = [("idempotency-key", key)];
            p.call(Method::POST, path, Some(&token), &key, Some(body))
                .await
        }
    };
    let conflict = (StatusCode::CONFLICT, "idempotency_key_reused");

    let (status, a) = send("/api/v1/trade/open", "k-open", open_btc("0.01", 10)).await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    for attempt in 0..3 {
        let (status, b) = send("/api/v1/trade/open", "k-open", open_btc("0.02", 10)).await;
        assert_eq!((status, code(&b)), conflict, "B, attempt {attempt}: {b}");
    }
    let (status, again) = send("/api/v1/trade/open", "k-open", open_btc("0.01", 10)).await;
    assert_eq!(
        (status, &again),
        (StatusCode::CREATED, &a),
        "A's retry gets A"
    );

    let id = a["position"]["id"].clone();
    let modify = json!({ "positionId": id, "stopLoss": "50000" });
    let (status, body) = send("/api/v1/trade/modify", "k-mod", modify).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for attempt in 0..3 {
        let (status, body) = send("/api/v1/trade/open", "k-mod", open_btc("0.01", 10)).await;
        assert_eq!(
            (status, code(&body)),
            conflict,
            "open, attempt {attempt}: {body}"
        );
    }
    let (_, open) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(
        open["positions"].as_array().map(Vec::len),
        Some(1),
        "{open}"
    );
}

#[tokio::test]
async fn engine_rejections_are_422_with_their_codes() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let cases = [
        (open_btc("0.01", 500), "invalid_leverage"),
        (open_btc("0.00001", 10), "invalid_quantity"),
        (open_btc("100", 1), "insufficient_margin"),
        (
            json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10, "stopLoss": "70000" }),
            "invalid_stop_loss",
        ),
        (
            json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10, "takeProfit": "50000" }),
            "invalid_take_profit",
        ),
        (
            json!({ "asset": "BTC", "side": "buy", "quantity": "0.01", "leverage": 10, "expectedPrice": "50000", "maxSlippageBps": 10 }),
            "slippage_exceeded",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = p.post("/api/v1/trade/open", t, body).await;
        assert_eq!(
            (status, code(&answer)),
            (StatusCode::UNPROCESSABLE_ENTITY, expected),
            "{answer}"
        );
    }
    let (_, balance) = p.get("/api/v1/balance", t).await;
    assert_eq!(
        balance["usedMargin"], "0.00",
        "nothing was opened: {balance}"
    );
}

#[tokio::test]
async fn history_is_paginated_newest_first() {
    let p = Platform::start().await;
    p.tick(Asset::Sol, "150.00", "150.10").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let mut ids = Vec::new();
    for _ in 0..3 {
        let open = json!({ "asset": "SOL", "side": "buy", "quantity": "1", "leverage": 2 });
        let (_, body) = p.post("/api/v1/trade/open", t, open).await;
        let id = body["position"]["id"].as_u64().expect("opened");
        let (status, _) = p
            .post("/api/v1/trade/close", t, json!({ "positionId": id }))
            .await;
        assert_eq!(status, StatusCode::OK);
        ids.push(id);
        // Distinct close times, so the order is by time and not only by id.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    closed_page(&p, &token, "", 3).await;
    let first = closed_page(&p, &token, "?limit=2", 2).await;
    let got: Vec<u64> = first["positions"]
        .as_array()
        .expect("page")
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(got, vec![ids[2], ids[1]]);
    let next = first["next"].as_str().expect("a next cursor");
    let (_, second) = p
        .get(&format!("/api/v1/trade/closed?limit=2&before={next}"), t)
        .await;
    let got: Vec<u64> = second["positions"]
        .as_array()
        .expect("page")
        .iter()
        .filter_map(|v| v["id"].as_u64())
        .collect();
    assert_eq!(got, vec![ids[0]]);
    assert_eq!(second["next"], Value::Null);

    for bad in [
        "?limit=0",
        "?limit=1000",
        "?limit=x",
        "?before=nope",
        "?unknown=1",
    ] {
        let (status, body) = p.get(&format!("/api/v1/trade/closed{bad}"), t).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
    let (_, other) = p.user().await;
    let (_, theirs) = p.get("/api/v1/trade/closed", Some(&other)).await;
    assert_eq!(theirs["positions"], json!([]), "history is per user");
}

#[tokio::test]
async fn an_accounts_commands_over_its_rate_are_429_and_other_accounts_are_served() {
    use tower::ServiceExt;
    let p = Platform::start_tuned(|s| {
        s.limits.account_commands = bus::limits::Rate::of(3, 3600);
    })
    .await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, a) = p.user().await;
    let (_, b) = p.user().await;
    for _ in 0..3 {
        let (status, body) = p
            .post("/api/v1/trade/open", Some(&a), open_btc("0.01", 10))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let command = |path: &str, token: &str, body: Value| {
        axum::http::Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .expect("request")
    };
    let over = p
        .app
        .clone()
        .oneshot(command("/api/v1/trade/open", &a, open_btc("0.01", 10)))
        .await
        .expect("infallible");
    assert_eq!(over.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = over.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=1200).contains(&retry), "Retry-After {retry}");
    // The budget is the account's, over every command route, alerts included.
    let (status, body) = p
        .post("/api/v1/trade/close", Some(&a), json!({ "positionId": 1 }))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    let alert = json!({ "asset": "BTC", "price": "1", "direction": "below" });
    let (status, _) = p.post("/api/v1/alerts", Some(&a), alert).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Nothing was opened by the refused requests, and queries are not limited.
    let (status, open) = p.get("/api/v1/trade/open", Some(&a)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        open["positions"].as_array().map(Vec::len),
        Some(3),
        "{open}"
    );
    // Another account is served.
    let (status, body) = p
        .post("/api/v1/trade/open", Some(&b), open_btc("0.01", 10))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Sends `n` rejected commands straight into the engine (closes of a position that does not
/// exist), spread over 1,000 users who have no account, 256 at a time.
async fn flood_of_rejections(p: &Platform, n: usize) {
    use futures_util::StreamExt;
    let users: Vec<bus::UserId> = (0..1_000)
        .map(|_| bus::UserId(uuid::Uuid::new_v4()))
        .collect();
    let sends = (0..n).map(|i| {
        let command = bus::Command::ClosePosition {
            user_id: users[i % users.len()],
            position_id: bus::PositionId(u64::MAX),
        };
        let id = bus::CommandId::new(format!("flood-{i}")).expect("id");
        p.engine.send(bus::CommandEnvelope { id, command })
    });
    let mut replies = futures_util::stream::iter(sends).buffer_unordered(256);
    let mut rejected = 0;
    while let Some(reply) = replies.next().await {
        match reply {
            Ok(bus::Reply::Rejected(_)) => rejected += 1,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }
    assert_eq!(rejected, n);
}

/// Issue 24, item 1: a keyed retry gets the first answer whatever other users did meanwhile
/// (100,001 of their commands) and after JetStream's duplicate window (1 s here, 2 min by
/// default) has passed, so the retry is logged again and answered from the engine's memory;
/// the same after a snapshot and a restart of the engine.
#[tokio::test]
async fn a_keyed_retry_gets_the_first_answer_after_a_flood_and_the_dedup_window() {
    let mut p = Platform::with_engine(|es| {
        es.streams.duplicate_window = Duration::from_secs(1);
    })
    .await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let key = [("idempotency-key", "open-before-the-flood")];
    async fn open(p: &Platform, token: &str, key: &[(&str, &str)]) -> (StatusCode, Value) {
        let body = Some(open_btc("0.01", 10));
        p.call(Method::POST, "/api/v1/trade/open", Some(token), key, body)
            .await
    }
    let (status, first) = open(&p, &token, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let opened_at = std::time::Instant::now();

    flood_of_rejections(&p, 100_001).await;
    // Past the duplicate window (the flood takes longer on any machine; this makes sure).
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(opened_at.elapsed())).await;

    let one_position = |body: Value| {
        let positions = body["positions"].as_array().cloned().unwrap_or_default();
        assert_eq!(positions.len(), 1, "traded once: {body}");
        positions[0]["id"].clone()
    };
    let (status, retry) = open(&p, &token, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{retry}");
    assert_eq!(retry, first, "the retry gets the first answer");
    let (_, list) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(one_position(list), first["position"]["id"]);

    p.restart_engine().await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let (status, again) = open(&p, &token, &key).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert_eq!(again, first, "after a snapshot and a restart too");
    let (_, list) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(one_position(list), first["position"]["id"]);
}

/// A retry inside JetStream's duplicate window of a request the engine no longer remembers
/// (the user sent more than their window of newer commands) is a clear 409
/// `idempotency_key_expired` at once, not a poll into a 504.
#[tokio::test]
async fn a_duplicate_the_engine_forgot_is_409_expired_not_a_timeout() {
    let p = Platform::with_engine(|es| es.engine.idempotency_window = 2).await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let open = |key: &'static str| {
        let token = token.clone();
        let p = &p;
        async move {
            p.call(
                Method::POST,
                "/api/v1/trade/open",
                Some(&token),
                &[("idempotency-key", key)],
                Some(open_btc("0.01", 10)),
            )
            .await
        }
    };
    for key in ["k1", "k2", "k3"] {
        let (status, body) = open(key).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let asked = std::time::Instant::now();
    let (status, body) = open("k1").await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::CONFLICT, "idempotency_key_expired"),
        "{body}"
    );
    assert!(
        asked.elapsed() < p.settings.engine_timeout,
        "answered before the engine timeout"
    );
    let (status, body) = open("k3").await;
    assert_eq!(status, StatusCode::CREATED, "still remembered: {body}");
    let (_, list) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(list["positions"].as_array().map(Vec::len), Some(3));
}

/// Issue 24, item 7: past the open-position cap an open is 422 `too_many_positions`; the
/// listing pages through every position exactly once.
#[tokio::test]
async fn opens_past_the_cap_are_422_and_pages_list_each_position_once() {
    let p = Platform::with_engine(|es| {
        es.engine.max_open_positions = 5;
        es.engine.page_size = 2;
    })
    .await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (status, body) = p
            .post("/api/v1/trade/open", Some(&token), open_btc("0.01", 10))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["position"]["id"].clone());
    }
    let (status, body) = p
        .post("/api/v1/trade/open", Some(&token), open_btc("0.01", 10))
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "too_many_positions"),
        "{body}"
    );

    // Without `limit`: everything (the engine's pages of 2 are joined), `next` null.
    let (status, all) = p.get("/api/v1/trade/open", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{all}");
    let listed: Vec<Value> = all["positions"]
        .as_array()
        .expect("positions")
        .iter()
        .map(|x| x["id"].clone())
        .collect();
    assert_eq!((listed, &all["next"]), (ids.clone(), &Value::Null));
    // With `limit`: pages, each item once, in id order.
    let mut paged = Vec::new();
    let mut query = "?limit=2".to_string();
    for _ in 0..10 {
        let (status, page) = p
            .get(&format!("/api/v1/trade/open{query}"), Some(&token))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["positions"].as_array().expect("positions");
        assert!(items.len() <= 2);
        paged.extend(items.iter().map(|x| x["id"].clone()));
        match page["next"].as_str() {
            Some(next) => query = format!("?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(paged, ids);
    for bad in ["?limit=0", "?limit=501", "?after=x", "?after=", "?cursor=1"] {
        let (status, body) = p
            .get(&format!("/api/v1/trade/open{bad}"), Some(&token))
            .await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}: {body}"
        );
    }
}
