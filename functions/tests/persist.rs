//! The persist event function: idempotent, order-safe writes, and the durable consumer on a
//! real EVENTS stream (a poison message does not stop it).

mod support;

use std::time::Duration;

use bus::{
    Asset, CloseReason, ClosedPosition, Envelope, Event, Leverage, Money, Names, Position,
    PositionId, Side, UserId,
};
use functions::persist::{EventKey, write_event};
use migrations::TestDatabase;
use rust_decimal_macros::dec;
use tokio::sync::watch;

fn position(user: UserId, id: u64) -> Position {
    Position {
        id: PositionId(id),
        user_id: user,
        asset: Asset::Eth,
        side: Side::Sell,
        quantity: dec!(2).try_into().expect("qty"),
        leverage: Leverage::new(20).expect("lev"),
        open_price: dec!(3000).try_into().expect("price"),
        margin: Money::new(dec!(300)).expect("money"),
        liquidation_price: Some(dec!(3150).try_into().expect("price")),
        stop_loss: None,
        take_profit: None,
        opened_at: 1_000,
    }
}

fn closed(p: &Position) -> ClosedPosition {
    ClosedPosition {
        position: p.clone(),
        close_price: dec!(2900).try_into().expect("price"),
        realized_pnl: Money::new(dec!(200)).expect("money"),
        close_reason: CloseReason::TakeProfit,
        closed_at: 2_000,
        absorbed_loss: Money::ZERO,
    }
}

async fn row(db: &TestDatabase, id: i64) -> (String, Option<String>, i64) {
    sqlx::query_as("SELECT status, close_reason, event_seq FROM positions WHERE id = $1")
        .bind(id)
        .fetch_one(&db.pool)
        .await
        .expect("row")
}

#[tokio::test]
async fn replayed_and_reordered_events_never_overwrite_newer_state() {
    let db = TestDatabase::create().await.expect("db");
    let user = UserId(uuid::Uuid::new_v4());
    let p = position(user, 9);
    let opened = Event::PositionOpened {
        position: p.clone(),
    };
    let mut modified = p.clone();
    modified.take_profit = Some(dec!(2900).try_into().expect("price"));
    let modified = Event::PositionModified {
        position: modified,
        at: 1_500,
    };
    let closed = Event::PositionClosed {
        position: closed(&p),
    };
    let key = |seq, index| EventKey { seq, index };

    write_event(&db.pool, key(5, 0), &opened)
        .await
        .expect("write");
    assert_eq!(row(&db, 9).await, ("open".into(), None, 5));
    write_event(&db.pool, key(8, 1), &closed)
        .await
        .expect("write");
    // A redelivered open and a late modification are older than the close: no effect.
    write_event(&db.pool, key(5, 0), &opened)
        .await
        .expect("write");
    write_event(&db.pool, key(6, 0), &modified)
        .await
        .expect("write");
    write_event(&db.pool, key(8, 1), &closed)
        .await
        .expect("write");
    assert_eq!(
        row(&db, 9).await,
        ("closed".into(), Some("take_profit".into()), 8)
    );
    let count: (i64,) = sqlx::query_as("SELECT count(*) FROM positions")
        .fetch_one(&db.pool)
        .await
        .expect("count");
    assert_eq!(count.0, 1);
}

#[tokio::test]
async fn the_consumer_writes_events_and_survives_a_poison_message() {
    let db = TestDatabase::create().await.expect("db");
    let names = Names::new(support::random_prefix());
    let nats = async_nats::connect(support::nats_url())
        .await
        .expect("nats");
    let js = async_nats::jetstream::new(nats);
    bus::nats::ensure_streams(&js, &names, &Default::default())
        .await
        .expect("streams");
    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(functions::persist::run(
        js.clone(),
        names.clone(),
        db.pool.clone(),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));

    let publish = |id: &'static str, payload: Vec<u8>| {
        let (js, subject) = (js.clone(), names.event("position_opened"));
        async move {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
            js.publish_with_headers(subject, headers, payload.into())
                .await
                .expect("publish")
                .await
                .expect("ack");
        }
    };
    publish("1-0", b"{ not an event".to_vec()).await;
    let user = UserId(uuid::Uuid::new_v4());
    let event = Event::PositionOpened {
        position: position(user, 3),
    };
    publish("2-0", Envelope::new(2, 0, event).encode()).await;

    let mut found = None;
    for _ in 0..250 {
        let r: Option<(String,)> = sqlx::query_as("SELECT status FROM positions WHERE id = 3")
            .fetch_optional(&db.pool)
            .await
            .expect("query");
        if r.is_some() {
            found = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(found, Some(("open".to_string(),)));
    stop.send_replace(true);
    let stopped = tokio::time::timeout(Duration::from_secs(5), task).await;
    assert!(
        matches!(stopped, Ok(Ok(Ok(())))),
        "stops cleanly on shutdown"
    );
    support::delete_streams(&names).await;
}
