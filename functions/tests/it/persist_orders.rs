//! The persist event function for issue 10's events (pending orders, fills, partial closes,
//! trailing stops), fed directly (no engine): replayed and reordered events never overwrite
//! newer state, and the history routes read what was written, paginated without skipping or
//! repeating rows that share a time.

use crate::support;

use axum::http::StatusCode;
use bus::{
    CancelReason, CloseReason, ClosedPosition, Event, Leverage, Money, Order, OrderId, OrderType,
    Position, PositionId, Price, Quantity, Side, UserId,
};
use functions::persist::{EventKey, write_all, write_event};
use migrations::TestDatabase;
use rust_decimal::Decimal;
use serde_json::Value;
use support::Platform;

fn price(s: &str) -> Price {
    s.parse().expect("price")
}

fn qty(s: &str) -> Quantity {
    s.parse().expect("quantity")
}

fn money(s: &str) -> Money {
    s.parse().expect("money")
}

fn key(seq: u64, index: u32) -> EventKey {
    EventKey { seq, index }
}

fn order(user: UserId, id: u64) -> Order {
    Order {
        id: OrderId(id),
        user_id: user,
        asset: bus::Asset::Btc,
        side: Side::Buy,
        order_type: OrderType::Limit,
        price: price("59000"),
        quantity: qty("0.1"),
        leverage: Leverage::new(10).expect("leverage"),
        stop_loss: Some(price("58000")),
        take_profit: None,
        expires_at: Some(5_000),
        created_at: 1_000,
    }
}

fn position(user: UserId, id: u64, quantity: &str, margin: &str) -> Position {
    Position {
        id: PositionId(id),
        user_id: user,
        asset: bus::Asset::Btc,
        side: Side::Buy,
        quantity: qty(quantity),
        leverage: Leverage::new(10).expect("leverage"),
        open_price: price("59000"),
        margin: money(margin),
        liquidation_price: Some(price("53100")),
        stop_loss: Some(price("58000")),
        take_profit: None,
        opened_at: 2_000,
        trailing_distance: None,
    }
}

fn closed_part(p: &Position, pnl: &str, at: i64) -> ClosedPosition {
    ClosedPosition {
        position: p.clone(),
        close_price: price("60000"),
        realized_pnl: money(pnl),
        close_reason: CloseReason::Manual,
        closed_at: at,
        absorbed_loss: Money::ZERO,
    }
}

async fn write(db: &sqlx::PgPool, k: EventKey, event: &Event) {
    write_event(db, k, event).await.expect("write");
}

type OrderRow = (String, Option<String>, Option<i64>, Option<i64>, Decimal);

async fn order_row(db: &TestDatabase, id: i64) -> OrderRow {
    sqlx::query_as(
        "SELECT status, cancel_reason, position_id, finished_at, price FROM orders WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .expect("order row")
}

#[tokio::test]
async fn order_events_replayed_or_reordered_never_overwrite_newer_state() {
    let db = TestDatabase::create().await.expect("db");
    let user = UserId(uuid::Uuid::new_v4());
    let placed = Event::OrderPlaced {
        order: order(user, 1),
    };
    let mut moved = order(user, 1);
    moved.price = price("58500");
    let modified = Event::OrderModified {
        order: moved.clone(),
        at: 1_500,
    };
    let cancelled = Event::OrderCancelled {
        order: moved,
        reason: CancelReason::Expired,
        at: 5_000,
    };
    write(&db.pool, key(3, 0), &placed).await;
    assert_eq!(
        order_row(&db, 1).await,
        (
            "pending".into(),
            None,
            None,
            None,
            "59000".parse().expect("d")
        )
    );
    write(&db.pool, key(7, 0), &cancelled).await;
    // A redelivered placement and a late modification are older than the cancel.
    write(&db.pool, key(3, 0), &placed).await;
    write(&db.pool, key(5, 0), &modified).await;
    assert_eq!(
        order_row(&db, 1).await,
        (
            "cancelled".into(),
            Some("expired".into()),
            None,
            Some(5_000),
            "58500".parse().expect("d")
        )
    );

    // A fill writes the order and the position it opened, in one go.
    let opened = position(user, 4, "0.1", "590");
    let filled = Event::OrderFilled {
        order: order(user, 2),
        position: opened.clone(),
    };
    write(&db.pool, key(9, 0), &filled).await;
    write(
        &db.pool,
        key(8, 0),
        &Event::OrderPlaced {
            order: order(user, 2),
        },
    )
    .await;
    assert_eq!(
        order_row(&db, 2).await,
        (
            "filled".into(),
            None,
            Some(4),
            Some(2_000),
            "59000".parse().expect("d")
        )
    );
    let status: (String, Decimal) =
        sqlx::query_as("SELECT status, quantity FROM positions WHERE id = 4")
            .fetch_one(&db.pool)
            .await
            .expect("position row");
    assert_eq!(status, ("open".into(), "0.1".parse().expect("d")));
}

type PositionRow = (String, Decimal, Decimal, Option<Decimal>, Option<Decimal>);

async fn position_row(db: &TestDatabase, id: i64) -> PositionRow {
    sqlx::query_as(
        "SELECT status, quantity, margin, stop_loss, trailing_distance FROM positions WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&db.pool)
    .await
    .expect("position row")
}

#[tokio::test]
async fn partial_closes_are_written_once_and_the_rest_keeps_its_latest_state() {
    let db = TestDatabase::create().await.expect("db");
    let user = UserId(uuid::Uuid::new_v4());
    let mut whole = position(user, 6, "0.3", "1770");
    whole.trailing_distance = Some(price("500"));
    let opened = Event::PositionOpened {
        position: whole.clone(),
    };
    let part = position(user, 6, "0.1", "590");
    let mut rest = position(user, 6, "0.2", "1180");
    rest.trailing_distance = Some(price("500"));
    // The trailing stop moved up to 59500 before the partial close (no event of its own).
    rest.stop_loss = Some(price("59500"));
    let partial = Event::PositionPartiallyClosed {
        closed: closed_part(&part, "100", 3_000),
        remaining: rest.clone(),
        at: 3_000,
    };
    let d = |s: &str| s.parse::<Decimal>().expect("d");
    write(&db.pool, key(2, 0), &opened).await;
    write(&db.pool, key(4, 0), &partial).await;
    write(&db.pool, key(4, 0), &partial).await;
    write(&db.pool, key(2, 0), &opened).await;
    assert_eq!(
        position_row(&db, 6).await,
        (
            "open".into(),
            d("0.2"),
            d("1180"),
            Some(d("59500")),
            Some(d("500"))
        )
    );
    let parts: Vec<(Decimal, Decimal, Decimal, i64)> = sqlx::query_as(
        "SELECT quantity, margin, realized_pnl, closed_at FROM position_partial_closes",
    )
    .fetch_all(&db.pool)
    .await
    .expect("rows");
    assert_eq!(parts, vec![(d("0.1"), d("590"), d("100"), 3_000)]);

    let mut last = closed_part(&rest, "200", 4_000);
    last.close_reason = CloseReason::TrailingStop;
    write(
        &db.pool,
        key(6, 0),
        &Event::PositionClosed { position: last },
    )
    .await;
    // A late copy of the partial close neither reopens the position nor adds a row.
    write(&db.pool, key(4, 0), &partial).await;
    assert_eq!(position_row(&db, 6).await.0, "closed");
    let trades: Vec<(i64, Decimal, bool)> = sqlx::query_as(
        "SELECT position_id, quantity, partial FROM closed_trades ORDER BY closed_at",
    )
    .fetch_all(&db.pool)
    .await
    .expect("view");
    assert_eq!(
        trades,
        vec![(6, d("0.1"), true), (6, d("0.2"), false)],
        "the view sees both"
    );
}

/// A history in which rows are written several times: a position opened, modified, partly
/// closed and closed; an order placed, modified and filled, its position closed; an order
/// placed and cancelled; a position opened and left open. Keys in engine order.
fn busy_history(user: UserId) -> Vec<(EventKey, Event)> {
    let whole = position(user, 1, "0.3", "1770");
    let mut moved = whole.clone();
    moved.stop_loss = Some(price("58500"));
    moved.trailing_distance = Some(price("400"));
    let mut rest = position(user, 1, "0.2", "1180");
    rest.stop_loss = moved.stop_loss;
    rest.trailing_distance = moved.trailing_distance;
    let mut repriced = order(user, 7);
    repriced.price = price("58800");
    let filled = position(user, 2, "0.1", "590");
    let mut last = closed_part(&filled, "-30", 6_000);
    last.close_reason = CloseReason::StopLoss;
    vec![
        (key(1, 0), Event::PositionOpened { position: whole }),
        (
            key(2, 0),
            Event::OrderPlaced {
                order: order(user, 7),
            },
        ),
        (
            key(3, 0),
            Event::PositionModified {
                position: moved.clone(),
                at: 2_500,
            },
        ),
        (
            key(4, 0),
            Event::OrderModified {
                order: repriced.clone(),
                at: 2_600,
            },
        ),
        (
            key(5, 0),
            Event::PositionPartiallyClosed {
                closed: closed_part(&position(user, 1, "0.1", "590"), "100", 3_000),
                remaining: rest.clone(),
                at: 3_000,
            },
        ),
        (
            key(6, 0),
            Event::OrderFilled {
                order: repriced,
                position: filled,
            },
        ),
        (
            key(6, 1),
            Event::PositionClosed {
                position: closed_part(&rest, "250", 4_000),
            },
        ),
        (
            key(7, 0),
            Event::OrderPlaced {
                order: order(user, 8),
            },
        ),
        (
            key(8, 0),
            Event::PositionOpened {
                position: position(user, 3, "0.5", "2950"),
            },
        ),
        (
            key(9, 0),
            Event::OrderCancelled {
                order: order(user, 8),
                reason: CancelReason::User,
                at: 5_000,
            },
        ),
        (key(10, 0), Event::PositionClosed { position: last }),
    ]
}

/// Every row the events wrote, tables and the analytics the triggers keep, as text.
async fn everything(db: &TestDatabase) -> Vec<String> {
    let mut all = Vec::new();
    for table in [
        "positions",
        "orders",
        "position_partial_closes",
        "closed_trade_days",
    ] {
        let rows: Vec<(String,)> = sqlx::query_as(&format!(
            "SELECT row_to_json(t)::text FROM {table} t ORDER BY row_to_json(t)::text"
        ))
        .fetch_all(&db.pool)
        .await
        .expect("rows");
        all.push(format!("{table}: {}", rows.len()));
        all.extend(rows.into_iter().map(|(row,)| row));
    }
    all
}

#[tokio::test]
async fn a_batch_leaves_the_rows_its_events_one_by_one_would_even_replayed() {
    let user = UserId(uuid::Uuid::new_v4());
    let history = busy_history(user);
    let one_by_one = TestDatabase::create().await.expect("db");
    for (k, event) in history.iter().chain(&history) {
        write(&one_by_one.pool, *k, event).await;
    }
    let batched = TestDatabase::create().await.expect("db");
    let events = |range: std::ops::Range<usize>| history[range].iter().map(|(k, e)| (*k, e));
    // Overlapping batches (a redelivery after a crash), then the whole history again.
    for range in [0..5, 2..9, 4..11, 0..11] {
        write_all(&batched.pool, events(range))
            .await
            .expect("batch");
    }
    let expected = everything(&one_by_one).await;
    assert!(
        expected.contains(&"positions: 3".to_string())
            && expected.contains(&"orders: 2".to_string())
            && expected.contains(&"position_partial_closes: 1".to_string()),
        "{expected:#?}"
    );
    assert_eq!(everything(&batched).await, expected);
}

/// Follows `next` from the first page with `limit=1`; returns every row's `field` in order.
async fn walk(p: &Platform, token: &str, route: &str, list: &str, field: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    let mut before = String::new();
    for _ in 0..20 {
        let (status, page) = p
            .get(&format!("{route}?limit=1{before}"), Some(token))
            .await;
        assert_eq!(status, StatusCode::OK, "{page}");
        for row in page[list].as_array().expect("rows") {
            seen.push(row[field].clone());
        }
        match page["next"].as_str() {
            Some(next) => before = format!("&before={next}"),
            None => return seen,
        }
    }
    panic!("pagination never ended: {seen:?}");
}

#[tokio::test]
async fn histories_page_through_rows_of_the_same_millisecond_exactly_once() {
    let p = Platform::without_engine(|_| {}).await;
    let (user, token) = p.user_without_account().await;
    let db = &p.db.pool;
    // Two partial closes and the final close of position 6, all at t=3000, and another
    // position closed then too: four rows that only the event key orders.
    let opened = position(user, 6, "0.3", "1770");
    write(db, key(1, 0), &Event::PositionOpened { position: opened }).await;
    for (seq, left, margin) in [(2, "0.2", "1180"), (3, "0.1", "590")] {
        let part = position(user, 6, "0.1", "590");
        let event = Event::PositionPartiallyClosed {
            closed: closed_part(&part, &format!("{seq}"), 3_000),
            remaining: position(user, 6, left, margin),
            at: 3_000,
        };
        write(db, key(seq, 0), &event).await;
    }
    let last = closed_part(&position(user, 6, "0.1", "590"), "4", 3_000);
    write(db, key(4, 1), &Event::PositionClosed { position: last }).await;
    let other = closed_part(&position(user, 7, "1", "5900"), "5", 3_000);
    write(db, key(4, 0), &Event::PositionClosed { position: other }).await;

    let pnls = walk(
        &p,
        &token,
        "/api/v1/trade/closed",
        "positions",
        "realizedPnl",
    )
    .await;
    assert_eq!(pnls, ["4", "5", "3", "2"].map(Value::from).to_vec());
    let (_, page) = p.get("/api/v1/trade/closed", Some(&token)).await;
    let partial: Vec<&Value> = page["positions"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| &r["partial"])
        .collect();
    assert_eq!(
        partial,
        [
            &Value::Bool(false),
            &false.into(),
            &true.into(),
            &true.into()
        ]
    );
    assert_eq!(page["positions"][2]["stopLoss"], Value::Null, "{page}");
    assert_eq!(page["positions"][0]["stopLoss"], "58000", "{page}");

    // Orders finished at the same time come newest id first.
    for id in 1..=3 {
        let event = Event::OrderCancelled {
            order: order(user, id),
            reason: CancelReason::User,
            at: 4_000,
        };
        write(db, key(10 + id, 0), &event).await;
    }
    write(
        db,
        key(20, 0),
        &Event::OrderPlaced {
            order: order(user, 4),
        },
    )
    .await;
    let filled = Event::OrderFilled {
        order: order(user, 5),
        position: position(user, 8, "0.1", "590"),
    };
    write(db, key(21, 0), &filled).await;
    let ids = walk(&p, &token, "/api/v1/trade/orders/history", "orders", "id").await;
    assert_eq!(
        ids,
        [3, 2, 1, 5].map(Value::from).to_vec(),
        "pending order 4 is not history"
    );
    let (_, page) = p.get("/api/v1/trade/orders/history", Some(&token)).await;
    let first = &page["orders"][0];
    assert_eq!(
        (
            &first["status"],
            &first["cancelReason"],
            &first["positionId"],
            &first["finishedAt"]
        ),
        (
            &"cancelled".into(),
            &"user".into(),
            &Value::Null,
            &4_000.into()
        )
    );
    let filled = &page["orders"][3];
    assert_eq!(
        (
            &filled["status"],
            &filled["cancelReason"],
            &filled["positionId"],
            &filled["type"]
        ),
        (&"filled".into(), &Value::Null, &8.into(), &"limit".into())
    );
    assert_eq!(filled["expiresAt"], 5_000);
    assert_eq!(filled["price"], "59000");

    let (_, other) = p.user_without_account().await;
    let (_, theirs) = p.get("/api/v1/trade/orders/history", Some(&other)).await;
    assert_eq!(
        theirs["orders"],
        Value::Array(vec![]),
        "history is per user"
    );
    for bad in [
        "?limit=0",
        "?limit=201",
        "?before=1_2_3",
        "?before=x",
        "?what=1",
    ] {
        let (status, body) = p
            .get(&format!("/api/v1/trade/orders/history{bad}"), Some(&token))
            .await;
        assert_eq!(
            (status, support::code(&body)),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{bad}"
        );
    }
    let (status, _) = p.get("/api/v1/trade/orders/history", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
