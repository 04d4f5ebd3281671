//! `GET /account/stats` and `/account/pnl` against a known history written straight into a
//! fresh database (full closes in `positions`, a partial close in `position_partial_closes`),
//! with exact figures: a liquidation, a breakeven trade, range ends exactly at a close time,
//! a user with no trades, empty days present with 0, weeks starting on Monday UTC, and the
//! rollup kept exact when a counted trade is later corrected.

use crate::support;

use axum::Router;
use axum::http::{Method, StatusCode};
use bus::UserId;
use functions::AppState;
use migrations::TestDatabase;
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{call, code, insert_user, test_settings};

const H: i64 = 3_600_000;
const D: i64 = 24 * H;
/// 2026-11-23 00:00 UTC, a Monday.
const D0: i64 = 1_795_392_000_000;

struct Fixture {
    app: Router,
    db: TestDatabase,
    state: AppState,
}

impl Fixture {
    async fn new() -> Self {
        let db = TestDatabase::create().await.expect("test database");
        let settings = test_settings(&db);
        let nats = async_nats::connect(&settings.nats_url).await.expect("nats");
        let state = AppState::new(&settings, nats, db.pool.clone()).expect("state");
        let app = functions::api(state.clone());
        Self { app, db, state }
    }

    async fn user(&self) -> (UserId, String) {
        let user = insert_user(&self.db.pool).await;
        (user, self.state.tokens().issue(user).expect("token").token)
    }

    async fn get(&self, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        call(&self.app, Method::GET, path, token, &[], None).await
    }

    async fn ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = self.get(path, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }
}

/// A position row as `persist` writes it; `closed` = (reason, pnl, closed_at) or open.
async fn position(
    db: &PgPool,
    id: i64,
    user: UserId,
    asset: &str,
    closed: Option<(&str, &str, i64)>,
) {
    let (reason, pnl, at) =
        closed.map_or((None, None, None), |(r, p, a)| (Some(r), Some(p), Some(a)));
    sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            opened_at, status, close_price, realized_pnl, close_reason, closed_at, event_seq, event_index) \
         VALUES ($1, $2, $3, 'buy', 1, 10, 100, 10, $4, $5, $6, $7::numeric, $8, $9, $1, 0)",
    )
    .bind(id)
    .bind(user.0)
    .bind(asset)
    .bind(D0 - D)
    .bind(if closed.is_some() { "closed" } else { "open" })
    .bind(closed.map(|_| Decimal::from(101)))
    .bind(pnl)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await
    .expect("position row");
}

/// Closes an open row the way `persist` does: an update of the same row.
async fn close(db: &PgPool, id: i64, reason: &str, pnl: &str, at: i64) {
    sqlx::query(
        "UPDATE positions SET status = 'closed', close_price = 99, realized_pnl = $2::numeric, \
            close_reason = $3, closed_at = $4, event_seq = event_seq + 1 WHERE id = $1",
    )
    .bind(id)
    .bind(pnl)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await
    .expect("close");
}

async fn partial_close(
    db: &PgPool,
    position_id: i64,
    user: UserId,
    asset: &str,
    reason: &str,
    pnl: &str,
    at: i64,
) {
    sqlx::query(
        "INSERT INTO position_partial_closes (event_seq, event_index, position_id, user_id, asset, \
            side, quantity, leverage, open_price, margin, opened_at, close_price, realized_pnl, \
            close_reason, closed_at) \
         VALUES ($1, 0, $1, $2, $3, 'sell', 1, 5, 100, 20, $4, 90, $5::numeric, $6, $7)",
    )
    .bind(position_id)
    .bind(user.0)
    .bind(asset)
    .bind(D0 - D)
    .bind(pnl)
    .bind(reason)
    .bind(at)
    .execute(db)
    .await
    .expect("partial close row");
}

/// The known history of one user (and noise from another user and an open position):
///
/// | # | asset | reason        | pnl     | closed at        |
/// |---|-------|---------------|---------|------------------|
/// | 1 | BTC   | manual        | 100.50  | Mon 01:00        |
/// | 2 | BTC   | stop_loss     | -40.25  | Mon 02:00        |
/// | 3 | ETH   | take_profit   | 60.00   | Tue 03:00        |
/// | 4 | ETH   | liquidation   | -125.75 | Tue 05:00        |
/// | 5 | SOL   | manual        | 0.00    | Thu 00:00        |
/// | 6 | SOL   | manual (part) | 10.01   | next Mon 01:00   |
/// | 7 | SOL   | trailing_stop | -5.00   | next Mon 02:00   |
async fn history(f: &Fixture, user: UserId) {
    let db = &f.db.pool;
    position(db, 1, user, "BTC", Some(("manual", "100.50", D0 + H))).await;
    // Opened first, closed later (the trigger's update path).
    position(db, 2, user, "BTC", None).await;
    close(db, 2, "stop_loss", "-40.25", D0 + 2 * H).await;
    position(
        db,
        3,
        user,
        "ETH",
        Some(("take_profit", "60", D0 + D + 3 * H)),
    )
    .await;
    position(
        db,
        4,
        user,
        "ETH",
        Some(("liquidation", "-125.75", D0 + D + 5 * H)),
    )
    .await;
    position(db, 5, user, "SOL", Some(("manual", "0", D0 + 3 * D))).await;
    partial_close(db, 7, user, "SOL", "manual", "10.01", D0 + 7 * D + H).await;
    position(
        db,
        7,
        user,
        "SOL",
        Some(("trailing_stop", "-5.00", D0 + 7 * D + 2 * H)),
    )
    .await;
    // Not counted: an open position, another user's trade.
    position(db, 8, user, "BTC", None).await;
    let other = insert_user(db).await;
    position(db, 9, other, "BTC", Some(("manual", "999.99", D0 + H))).await;
}

fn money(v: &Value) -> &str {
    v.as_str().unwrap_or("<not a string>")
}

#[tokio::test]
async fn stats_over_a_known_history_are_exact() {
    let f = Fixture::new().await;
    let (user, token) = f.user().await;
    history(&f, user).await;
    let s = f.ok("/api/v1/account/stats", &token).await;
    assert_eq!(
        (s["from"].clone(), s["to"].clone()),
        (json!(0), Value::Null)
    );
    let o = &s["overall"];
    assert_eq!(o["trades"], 7);
    assert_eq!(
        (o["wins"].clone(), o["losses"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(money(&o["winRate"]), "0.4286");
    assert_eq!(money(&o["grossProfit"]), "170.51");
    assert_eq!(money(&o["grossLoss"]), "-171.00");
    assert_eq!(money(&o["profitFactor"]), "1.00");
    assert_eq!(money(&o["averageWin"]), "56.84");
    assert_eq!(money(&o["averageLoss"]), "-57.00");
    assert_eq!(money(&o["largestWin"]), "100.50");
    assert_eq!(money(&o["largestLoss"]), "-125.75");
    assert_eq!(money(&o["realizedPnl"]), "-0.49");

    let reasons: Vec<(String, i64, String)> = s["byCloseReason"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| {
            let name = money(&r["closeReason"]).to_string();
            (
                name,
                r["trades"].as_i64().expect("n"),
                money(&r["realizedPnl"]).into(),
            )
        })
        .collect();
    let expected = [
        ("manual", 3, "110.51"),
        ("stop_loss", 1, "-40.25"),
        ("take_profit", 1, "60.00"),
        ("trailing_stop", 1, "-5.00"),
        ("liquidation", 1, "-125.75"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(r, n, p)| (r.to_string(), *n, p.to_string()))
        .collect();
    assert_eq!(reasons, expected);

    let assets = s["byAsset"].as_array().expect("assets");
    let row = |i: usize, key: &str| assets[i][key].clone();
    assert_eq!(
        assets
            .iter()
            .map(|a| money(&a["asset"]))
            .collect::<Vec<_>>(),
        ["BTC", "ETH", "SOL"]
    );
    assert_eq!(
        (row(0, "trades"), row(0, "realizedPnl")),
        (json!(2), json!("60.25"))
    );
    assert_eq!(row(0, "profitFactor"), json!("2.50"));
    assert_eq!(
        (row(1, "realizedPnl"), row(1, "profitFactor")),
        (json!("-65.75"), json!("0.48"))
    );
    assert_eq!(row(1, "largestLoss"), json!("-125.75"));
    // SOL: a breakeven, a win, a loss.
    assert_eq!(
        (row(2, "trades"), row(2, "wins"), row(2, "losses")),
        (json!(3), json!(1), json!(1))
    );
    assert_eq!(
        (row(2, "winRate"), row(2, "realizedPnl")),
        (json!("0.3333"), json!("5.01"))
    );
    assert_eq!(row(2, "profitFactor"), json!("2.00"));
}

#[tokio::test]
async fn range_ends_count_from_inclusive_to_exclusive() {
    let f = Fixture::new().await;
    let (user, token) = f.user().await;
    history(&f, user).await;
    let pnl = |from: i64, to: Option<i64>| {
        let to = to.map_or(String::new(), |t| format!("&to={t}"));
        format!("/api/v1/account/stats?from={from}{to}")
    };
    let cases = [
        // From exactly trade 5's close time (a day start: whole days only).
        (pnl(D0 + 3 * D, None), 3, "5.01"),
        // To exactly trade 5's close time: it is left out.
        (pnl(0, Some(D0 + 3 * D)), 4, "-5.50"),
        // Inside two days: from exactly trade 1, to exactly trade 4 (left out).
        (pnl(D0 + H, Some(D0 + D + 5 * H)), 3, "120.25"),
        // Partial edge days around whole days (rollup and trades together).
        (pnl(D0 + H, Some(D0 + 7 * D + 90 * 60_000)), 6, "4.51"),
        (pnl(D0 + H + 1, Some(D0 + 7 * D + H)), 4, "-106.00"),
        // Empty: nothing closed in it.
        (pnl(D0 + 4 * D, Some(D0 + 7 * D)), 0, "0.00"),
        (pnl(D0, Some(D0)), 0, "0.00"),
    ];
    for (path, trades, realized) in cases {
        let s = f.ok(&path, &token).await;
        assert_eq!(s["overall"]["trades"], trades, "{path}");
        assert_eq!(money(&s["overall"]["realizedPnl"]), realized, "{path}");
    }
}

#[tokio::test]
async fn a_user_without_trades_gets_zeros_and_nulls() {
    let f = Fixture::new().await;
    let (_, token) = f.user().await;
    let s = f.ok("/api/v1/account/stats", &token).await;
    let o = &s["overall"];
    assert_eq!(
        (o["trades"].clone(), o["wins"].clone()),
        (json!(0), json!(0))
    );
    for key in [
        "winRate",
        "profitFactor",
        "averageWin",
        "averageLoss",
        "largestWin",
        "largestLoss",
    ] {
        assert_eq!(o[key], Value::Null, "{key}");
    }
    assert_eq!(
        (money(&o["realizedPnl"]), money(&o["grossLoss"])),
        ("0.00", "0.00")
    );
    assert_eq!(s["byAsset"].as_array().map(Vec::len), Some(3));
    let reasons = s["byCloseReason"].as_array().expect("reasons");
    assert_eq!(reasons.len(), 5);
    assert!(
        reasons
            .iter()
            .all(|r| r["trades"] == 0 && r["realizedPnl"] == "0.00")
    );

    let p = f.ok("/api/v1/account/pnl", &token).await;
    assert_eq!(
        (p["from"].clone(), p["points"].clone()),
        (Value::Null, json!([]))
    );
    let p = f
        .ok(
            &format!("/api/v1/account/pnl?from={D0}&to={}", D0 + 3 * D),
            &token,
        )
        .await;
    let points = p["points"].as_array().expect("points");
    assert_eq!(points.len(), 3);
    assert!(
        points
            .iter()
            .all(|p| p["pnl"] == "0.00" && p["cumulative"] == "0.00")
    );
}

fn series(p: &Value) -> Vec<(i64, i64, String, String)> {
    p["points"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_i64().expect("integer");
            (
                n("time"),
                n("trades"),
                money(&p["pnl"]).into(),
                money(&p["cumulative"]).into(),
            )
        })
        .collect()
}

fn point(time: i64, trades: i64, pnl: &str, cumulative: &str) -> (i64, i64, String, String) {
    (time, trades, pnl.into(), cumulative.into())
}

#[tokio::test]
async fn daily_and_weekly_pnl_have_every_bucket() {
    let f = Fixture::new().await;
    let (user, token) = f.user().await;
    history(&f, user).await;
    let daily = f
        .ok(
            &format!("/api/v1/account/pnl?from={D0}&to={}", D0 + 8 * D),
            &token,
        )
        .await;
    assert_eq!(daily["interval"], "1d");
    let zero = |day: i64| point(D0 + day * D, 0, "0.00", "-5.50");
    assert_eq!(
        series(&daily),
        vec![
            point(D0, 2, "60.25", "60.25"),
            point(D0 + D, 2, "-65.75", "-5.50"),
            zero(2),
            point(D0 + 3 * D, 1, "0.00", "-5.50"),
            zero(4),
            zero(5),
            zero(6),
            point(D0 + 7 * D, 2, "5.01", "-0.49"),
        ]
    );
    // Without `from`: from the first trade's day.
    let all = f
        .ok(&format!("/api/v1/account/pnl?to={}", D0 + 8 * D), &token)
        .await;
    assert_eq!(
        (all["from"].clone(), series(&all)),
        (json!(D0), series(&daily))
    );

    let weekly = f
        .ok(
            &format!(
                "/api/v1/account/pnl?interval=1w&from={D0}&to={}",
                D0 + 14 * D
            ),
            &token,
        )
        .await;
    assert_eq!(
        series(&weekly),
        vec![
            point(D0, 5, "-5.50", "-5.50"),
            point(D0 + 7 * D, 2, "5.01", "-0.49")
        ]
    );
    // From a Tuesday: the first bucket still starts on Monday, with the trades from `from` on.
    let from = D0 + D + 4 * H;
    let weekly = f
        .ok(
            &format!(
                "/api/v1/account/pnl?interval=1w&from={from}&to={}",
                D0 + 8 * D
            ),
            &token,
        )
        .await;
    assert_eq!(
        series(&weekly),
        vec![
            point(D0, 2, "-125.75", "-125.75"),
            point(D0 + 7 * D, 2, "5.01", "-120.74")
        ]
    );
}

#[tokio::test]
async fn a_corrected_trade_is_recounted() {
    let f = Fixture::new().await;
    let (user, token) = f.user().await;
    history(&f, user).await;
    let db = &f.db.pool;
    // Trade 1 rewritten (another pnl, another reason), trade 3 removed.
    sqlx::query(
        "UPDATE positions SET realized_pnl = 20.5, close_reason = 'take_profit' WHERE id = 1",
    )
    .execute(db)
    .await
    .expect("update");
    sqlx::query("DELETE FROM positions WHERE id = 3")
        .execute(db)
        .await
        .expect("delete");
    let s = f.ok("/api/v1/account/stats", &token).await;
    let o = &s["overall"];
    assert_eq!(o["trades"], 6);
    assert_eq!(money(&o["largestWin"]), "20.50");
    assert_eq!(money(&o["realizedPnl"]), "-140.49");
    assert_eq!(s["byCloseReason"][0]["trades"], 2);
    assert_eq!(s["byCloseReason"][2]["realizedPnl"], "20.50");
    // The rollup equals a recount from the trades.
    let mismatched: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT user_id, closed_trade_day(closed_at) AS day, asset, \
            close_reason, count(*) AS trades, sum(realized_pnl) AS pnl FROM closed_trades \
            GROUP BY 1, 2, 3, 4) r FULL JOIN closed_trade_days d USING (user_id, day, asset, close_reason) \
         WHERE r.trades IS DISTINCT FROM d.trades OR r.pnl IS DISTINCT FROM d.realized_pnl",
    )
    .fetch_one(db)
    .await
    .expect("recount");
    assert_eq!(mismatched, 0);
}

#[tokio::test]
async fn bad_input_is_400_a_too_long_series_422_and_no_token_401() {
    let f = Fixture::new().await;
    let (_, token) = f.user().await;
    let cases = [
        ("/api/v1/account/stats?from=-1", "invalid_range"),
        ("/api/v1/account/stats?from=abc", "invalid_range"),
        ("/api/v1/account/stats?to=253402300800000", "invalid_range"),
        ("/api/v1/account/stats?limit=5", "invalid_query"),
        ("/api/v1/account/pnl?interval=1h", "invalid_interval"),
    ];
    for (path, expected) in cases {
        let (status, body) = f.get(path, Some(&token)).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::BAD_REQUEST, expected),
            "{path}"
        );
    }
    // More buckets than a series holds: well-formed, but over the route's rule.
    let (status, body) = f
        .get(
            "/api/v1/account/pnl?from=0&to=253402300799999",
            Some(&token),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_range")
    );
    // A `to` before `from` is an empty range, as on /candles: zero figures, no buckets.
    let (status, body) = f
        .get("/api/v1/account/stats?from=10&to=5", Some(&token))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["overall"]["trades"], 0, "{body}");
    let (status, body) = f.get("/api/v1/account/pnl?from=5&to=4", Some(&token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["points"], serde_json::json!([]), "{body}");
    for path in ["/api/v1/account/stats", "/api/v1/account/pnl"] {
        let (status, body) = f.get(path, None).await;
        assert_eq!(
            (status, code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
    }
}
