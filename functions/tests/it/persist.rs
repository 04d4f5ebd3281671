//! The persist event function: idempotent, order-safe writes, and the durable consumer on a
//! real EVENTS stream (a poison message does not stop it).

use crate::support;

use std::time::Duration;

use bus::events::{LoggedEvent, MAX_BATCH_BYTES, encode_batches};
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
        trailing_distance: None,
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

/// A fresh database and, under a random prefix, the engine's streams.
async fn streams() -> (TestDatabase, Names, async_nats::jetstream::Context) {
    let db = TestDatabase::create().await.expect("db");
    let names = Names::new(support::random_prefix());
    let nats = async_nats::connect(support::nats_url())
        .await
        .expect("nats");
    let js = async_nats::jetstream::new(nats);
    bus::nats::ensure_streams(&js, &names, &Default::default())
        .await
        .expect("streams");
    (db, names, js)
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
    let (db, names, js) = streams().await;
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

/// Publishes an event into `EVENTS` with its `<seq>-<index>` id.
async fn publish_event(
    js: &async_nats::jetstream::Context,
    names: &Names,
    id: &str,
    payload: Vec<u8>,
) {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
    js.publish_with_headers(names.event("position_opened"), headers, payload.into())
        .await
        .expect("publish")
        .await
        .expect("ack");
}

fn opened(seq: u64, p: Position) -> Vec<u8> {
    Envelope::new(seq, 0, Event::PositionOpened { position: p }).encode()
}

/// Polls until `check` holds (generous deadline, for loaded machines).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored(db: &TestDatabase, ids: &[i64]) -> bool {
    let n: (i64,) = sqlx::query_as("SELECT count(*) FROM positions WHERE id = ANY($1)")
        .bind(ids)
        .fetch_one(&db.pool)
        .await
        .expect("count");
    n.0 == ids.len() as i64
}

#[tokio::test]
async fn a_poison_event_goes_to_the_dead_letter_stream_and_history_goes_on() {
    let (db, names, js) = streams().await;
    // One batch: good, poison (an id PostgreSQL cannot store), good, unreadable.
    let user = UserId(uuid::Uuid::new_v4());
    publish_event(&js, &names, "1-0", opened(1, position(user, 10))).await;
    publish_event(&js, &names, "2-0", opened(2, position(user, u64::MAX))).await;
    publish_event(&js, &names, "3-0", opened(3, position(user, 11))).await;
    publish_event(&js, &names, "4-0", b"{ not an event".to_vec()).await;

    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(functions::persist::run(
        js.clone(),
        names.clone(),
        db.pool.clone(),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));
    eventually("the good events of the batch are written", || {
        stored(&db, &[10, 11])
    })
    .await;
    let dead = || async {
        let mut s = js
            .get_stream(names.dead_letter_stream())
            .await
            .expect("dead-letter stream");
        s.info().await.expect("info").state.messages
    };
    eventually("both bad events are dead letters", || async {
        dead().await == 2
    })
    .await;
    let stream = js
        .get_stream(names.dead_letter_stream())
        .await
        .expect("dead letters");
    let poison = stream.get_raw_message(2).await.expect("second dead letter");
    let first = stream.get_raw_message(1).await.expect("first dead letter");
    let id = |m: &async_nats::jetstream::message::StreamMessage| {
        m.headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
    };
    let mut ids = [id(&first), id(&poison)];
    ids.sort();
    assert_eq!(ids, [Some("2-0".into()), Some("4-0".into())]);
    assert!(
        poison.headers.get("Persist-Error").is_some()
            && first.headers.get("Persist-Error").is_some(),
        "the reason travels with the dead letter"
    );

    // History goes on.
    publish_event(&js, &names, "5-0", opened(5, position(user, 12))).await;
    eventually("a later event is written", || stored(&db, &[10, 11, 12])).await;
    assert_eq!(dead().await, 2);

    // Bounded deliveries, and a short ack wait: a restarted consumer soon gets what a killed
    // one held (it waited 30 s before).
    let consumer = js
        .get_stream(names.events_stream())
        .await
        .expect("stream")
        .consumer_info(functions::persist::CONSUMER)
        .await
        .expect("consumer")
        .config
        .clone();
    assert!(consumer.max_deliver > 0, "{consumer:?}");
    assert!(consumer.ack_wait <= Duration::from_secs(5), "{consumer:?}");
    stop.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    support::delete_streams(&names).await;
}

#[tokio::test]
async fn a_batch_message_is_written_whole_and_only_its_poison_event_is_dead_lettered() {
    let (db, names, js) = streams().await;
    // As the engine stores them: the events of several inputs in one message.
    let user = UserId(uuid::Uuid::new_v4());
    let logged = |seq, id| LoggedEvent {
        seq,
        index: 0,
        ts: 0,
        request_id: None,
        event: Event::PositionOpened {
            position: position(user, id),
        },
    };
    let events = [logged(5, 20), logged(6, u64::MAX), logged(7, 21)];
    let batch = encode_batches(&events, MAX_BATCH_BYTES).remove(0);
    let mut headers = async_nats::HeaderMap::new();
    let id = batch.range.to_string();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
    js.publish_with_headers(names.event_batch(), headers, batch.payload.into())
        .await
        .expect("publish")
        .await
        .expect("ack");

    let (stop, mut rx) = watch::channel(false);
    let task = tokio::spawn(functions::persist::run(
        js.clone(),
        names.clone(),
        db.pool.clone(),
        async move {
            let _ = rx.wait_for(|s| *s).await;
        },
    ));
    eventually("the good events of the batch are written", || {
        stored(&db, &[20, 21])
    })
    .await;
    eventually("the poison event is a dead letter", || async {
        let mut s = js
            .get_stream(names.dead_letter_stream())
            .await
            .expect("dead-letter stream");
        s.info().await.expect("info").state.messages == 1
    })
    .await;
    let dead = js
        .get_stream(names.dead_letter_stream())
        .await
        .expect("dead letters");
    let letter = dead.get_raw_message(1).await.expect("the dead letter");
    let held = letter
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)
        .map(|v| v.to_string());
    assert_eq!(held.as_deref(), Some("6-0..6-0"), "that event alone");
    let body = Envelope::<bus::events::EventBatch>::decode(&letter.payload).expect("a batch");
    assert_eq!(body.body.events, [events[1].clone()]);
    // The message is acked once each event is written or dead-lettered.
    eventually("the batch message is acked", || async {
        let stream = js.get_stream(names.events_stream()).await.expect("stream");
        let info = stream
            .consumer_info(functions::persist::CONSUMER)
            .await
            .expect("consumer");
        info.num_ack_pending == 0 && info.num_pending == 0
    })
    .await;
    stop.send_replace(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    support::delete_streams(&names).await;
}
