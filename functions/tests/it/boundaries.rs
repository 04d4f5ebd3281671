//! One rule, one code (issue 8, defect 11): every well-formed number that breaks a trading
//! rule is 422 with that rule's code, at every boundary, whether the edge or the engine
//! notices; only malformed input (not a number, a wrong type) is 400.

use crate::support;

use axum::http::{Method, StatusCode};
use bus::Asset;
use serde_json::json;
use support::{Platform, call, code};

const CREATED: (StatusCode, &str) = (StatusCode::CREATED, "<no error code>");

fn rule(code: &'static str) -> (StatusCode, &'static str) {
    (StatusCode::UNPROCESSABLE_ENTITY, code)
}

fn malformed() -> (StatusCode, &'static str) {
    (StatusCode::BAD_REQUEST, "invalid_request")
}

/// A BTC buy with `field` set to the raw JSON `value` (quantity 0.0001 at 1x otherwise).
fn open_with(field: &str, value: &str) -> String {
    let mut fields = vec![
        ("asset", "\"BTC\""),
        ("side", "\"buy\""),
        ("quantity", "\"0.0001\""),
        ("leverage", "1"),
    ];
    fields.retain(|(name, _)| *name != field);
    fields.push((field, value));
    let fields: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("\"{name}\":{value}"))
        .collect();
    format!("{{{}}}", fields.join(","))
}

#[tokio::test]
async fn every_leverage_quantity_and_level_boundary_gets_the_rules_code() {
    let p = Platform::start().await;
    p.tick(Asset::Btc, "60000.00", "60010.00").await;
    let (_, token) = p.user().await;
    let t = Some(token.as_str());
    let cases = [
        // Leverage: a whole number from 1 to the asset's maximum (100 for BTC).
        ("leverage", "0", rule("invalid_leverage")),
        ("leverage", "1", CREATED),
        ("leverage", "100", CREATED),
        ("leverage", "101", rule("invalid_leverage")),
        ("leverage", "1000", rule("invalid_leverage")),
        ("leverage", "1001", rule("invalid_leverage")),
        ("leverage", "-1", rule("invalid_leverage")),
        ("leverage", "1.5", rule("invalid_leverage")),
        ("leverage", "4294967296", rule("invalid_leverage")),
        ("leverage", "1e30", rule("invalid_leverage")),
        ("leverage", "\"10\"", malformed()),
        ("leverage", "null", malformed()),
        // Quantity: a multiple of 0.0001 from 0.0001 to 100.
        ("quantity", "\"0\"", rule("invalid_quantity")),
        ("quantity", "0", rule("invalid_quantity")),
        ("quantity", "\"-0.0001\"", rule("invalid_quantity")),
        ("quantity", "-1", rule("invalid_quantity")),
        ("quantity", "\"0.00009\"", rule("invalid_quantity")),
        ("quantity", "\"0.0001\"", CREATED),
        ("quantity", "0.0002", CREATED),
        ("quantity", "\"0.00015\"", rule("invalid_quantity")),
        ("quantity", "\"100.0001\"", rule("invalid_quantity")),
        (
            "quantity",
            "\"123456789012345678901234567890\"",
            rule("invalid_quantity"),
        ),
        ("quantity", "1e30", rule("invalid_quantity")),
        ("quantity", "\"abc\"", malformed()),
        ("quantity", "\"1e5\"", malformed()),
        ("quantity", "true", malformed()),
        // Levels: a stop-loss below the bid, a take-profit above it, positive.
        ("stopLoss", "\"0\"", rule("invalid_stop_loss")),
        ("stopLoss", "\"-1\"", rule("invalid_stop_loss")),
        ("stopLoss", "\"60000.00\"", rule("invalid_stop_loss")),
        ("stopLoss", "\"59999.99\"", CREATED),
        ("stopLoss", "\"abc\"", malformed()),
        ("takeProfit", "0", rule("invalid_take_profit")),
        ("takeProfit", "\"60000.00\"", rule("invalid_take_profit")),
        ("takeProfit", "\"60000.01\"", CREATED),
        ("takeProfit", "[]", malformed()),
    ];
    for (field, value, expected) in cases {
        let body = open_with(field, value);
        let (status, answer) = call(
            &p.app,
            Method::POST,
            "/api/v1/trade/open",
            t,
            &[],
            Some(body.clone()),
        )
        .await;
        assert_eq!((status, code(&answer)), expected, "{body}: {answer}");
    }

    let (_, open) = p.get("/api/v1/trade/open", t).await;
    let id = open["positions"][0]["id"].clone();
    for (level, expected) in [
        (json!({ "stopLoss": "0" }), rule("invalid_stop_loss")),
        (json!({ "stopLoss": -5 }), rule("invalid_stop_loss")),
        (
            json!({ "takeProfit": "-0.01" }),
            rule("invalid_take_profit"),
        ),
        (json!({ "takeProfit": "x" }), malformed()),
        (
            json!({ "stopLoss": "59000" }),
            (StatusCode::OK, "<no error code>"),
        ),
    ] {
        let mut body = level.clone();
        body["positionId"] = id.clone();
        let (status, answer) = p.post("/api/v1/trade/modify", t, body).await;
        assert_eq!((status, code(&answer)), expected, "{level}: {answer}");
    }
}
