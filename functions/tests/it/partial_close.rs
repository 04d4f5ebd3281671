//! Partial closes and trailing stops through the routers, against the real engine service
//! and persist consumer: both parts in the answer, pro-rata margin and PnL to the cent, the
//! trailing level in the positions view, and the closed history listing every part.

use crate::support;

use axum::http::StatusCode;
use bus::Asset;
use serde_json::{Value, json};
use support::{Platform, code};

fn len(body: &Value, list: &str) -> usize {
    body[list].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn a_partial_close_answers_both_parts_and_history_lists_it() {
    let p = Platform::start().await;
    p.tick(Asset::Eth, "3000.00", "3001.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let open = json!({ "asset": "ETH", "side": "buy", "quantity": "1", "leverage": 10, "trailingDistance": "0.001" });
    let (status, body) = p.post("/api/v1/trade/open", t, open).await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_trailing_distance"
        )
    );
    let open = json!({ "asset": "ETH", "side": "buy", "quantity": "1", "leverage": 10 });
    let (status, body) = p.post("/api/v1/trade/open", t, open).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["position"]["trailingDistance"], Value::Null);
    let id = body["position"]["id"].clone();

    let modify = |distance: Value| json!({ "positionId": id, "trailingDistance": distance });
    let (status, body) = p.post("/api/v1/trade/modify", t, modify(json!("0"))).await;
    assert_eq!(
        (status, code(&body)),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_trailing_distance"
        )
    );
    let (status, body) = p.post("/api/v1/trade/modify", t, modify(json!("50"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["position"]["trailingDistance"], "50");
    // The bid rises 100: the trailing stop follows it to 50 below.
    p.tick(Asset::Eth, "3100.00", "3101.00").await;
    let (_, open) = p.get("/api/v1/trade/open", t).await;
    let shown = &open["positions"][0];
    assert_eq!(
        (&shown["trailingDistance"], &shown["stopLoss"]),
        (&json!("50"), &json!("3050.00")),
        "{open}"
    );

    let close = |quantity: &str| json!({ "positionId": id, "quantity": quantity });
    for bad in ["1", "0.0005", "0"] {
        let (status, body) = p.post("/api/v1/trade/close", t, close(bad)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_quantity"),
            "{bad}"
        );
    }
    let (status, body) = p.post("/api/v1/trade/close", t, close("0.4")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let part = &body["position"];
    assert_eq!(
        (
            &part["id"],
            &part["quantity"],
            &part["margin"],
            &part["realizedPnl"],
            &part["closePrice"],
            &part["partial"]
        ),
        (
            &id,
            &json!("0.4"),
            &json!("120.04"),
            &json!("39.60"),
            &json!("3100.00"),
            &json!(true)
        ),
        "{body}"
    );
    let rest = &body["remaining"];
    assert_eq!(
        (&rest["quantity"], &rest["margin"], &rest["stopLoss"]),
        (&json!("0.6"), &json!("180.06"), &json!("3050.00"))
    );

    // The bid falls to the trailing stop's level: it closes there, as `trailing_stop`.
    p.tick(Asset::Eth, "3040.00", "3041.00").await;
    let (_, open) = p.get("/api/v1/trade/open", t).await;
    assert_eq!(open["positions"], json!([]), "{open}");

    let page = p
        .get_until("/api/v1/trade/closed", &token, |b| len(b, "positions") == 2)
        .await;
    let rows: Vec<[Value; 5]> = page["positions"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            [
                "quantity",
                "partial",
                "trailingDistance",
                "closeReason",
                "stopLoss",
            ]
            .map(|f| r[f].clone())
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            [
                json!("0.6"),
                json!(false),
                json!("50"),
                json!("trailing_stop"),
                json!("3050.00")
            ],
            [
                json!("0.4"),
                json!(true),
                Value::Null,
                json!("manual"),
                Value::Null
            ],
        ],
        "{page}"
    );
    assert_eq!(page["positions"][0]["closePrice"], "3040.00");
}
