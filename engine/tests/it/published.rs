//! Exactly once in `EVENTS` across a writer's death: a writer that stored a batch's events but
//! died before acking its inputs is followed by one that applies those inputs again, cut into
//! other batches; it reads back what is stored and stores only the rest.

use crate::svc;

use std::time::Duration;

use async_nats::jetstream;
use bus::events::{EventKey, KeyRange, LoggedEvent, MAX_BATCH_BYTES, encode_batches};
use bus::nats::{StreamSettings, ensure_streams};
use bus::{Command, EngineInput, Envelope, Event, Names};
use engine::Engine;
use engine::service::{Processor, Published, Settings, recovery};
use futures_util::StreamExt;
use svc::*;

async fn connect(names: &Names) -> (async_nats::Client, jetstream::Context) {
    let nats = async_nats::connect(nats_url()).await.expect("nats");
    let js = jetstream::new(nats.clone());
    ensure_streams(&js, names, &StreamSettings::default())
        .await
        .expect("streams");
    (nats, js)
}

/// Stores events as a writer does: one batch message per call, id = its key range.
async fn store(js: &jetstream::Context, names: &Names, keys: &[(u64, u32)]) {
    let events: Vec<LoggedEvent> = keys
        .iter()
        .map(|&(seq, index)| LoggedEvent {
            seq,
            index,
            ts: 0,
            request_id: None,
            event: Event::AccountCreated {
                user_id: user(u128::from(seq)),
                balance: "1".parse().expect("money"),
                at: 0,
            },
        })
        .collect();
    for b in encode_batches(&events, MAX_BATCH_BYTES) {
        let publish = jetstream::message::PublishMessage::build()
            .payload(b.payload.into())
            .message_id(b.range.to_string());
        js.send_publish(names.event_batch(), publish)
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
}

fn key(seq: u64, index: u32) -> EventKey {
    EventKey { seq, index }
}

#[tokio::test]
async fn the_tail_read_covers_exactly_the_keys_stored_past_the_ack_floor() {
    let names = random_names();
    let (_nats, js) = connect(&names).await;
    assert!(
        Published::read_tail(&js, &names, 0)
            .await
            .expect("empty")
            .is_empty()
    );
    store(&js, &names, &[(1, 0), (2, 0), (2, 1)]).await;
    store(&js, &names, &[(3, 0), (5, 0)]).await;
    store(&js, &names, &[(6, 0), (6, 1)]).await;

    let mut past_2 = Published::read_tail(&js, &names, 2).await.expect("tail");
    let covered: Vec<bool> = [
        key(2, 1),
        key(3, 0),
        key(4, 0),
        key(5, 0),
        key(6, 1),
        key(7, 0),
    ]
    .into_iter()
    .map(|k| past_2.covers(k))
    .collect();
    assert_eq!(covered, [false, true, true, true, true, false]);
    assert!(
        Published::read_tail(&js, &names, 6)
            .await
            .expect("tail")
            .is_empty(),
        "nothing past the floor"
    );
    cleanup(&names).await;
}

/// Logs `n` account creations into `ENGINE` (as callers do).
async fn log_commands(js: &jetstream::Context, names: &Names, n: u128) {
    for i in 1..=n {
        let input = EngineInput::command(cmd(
            &format!("c{i}"),
            Command::CreateAccount { user_id: user(i) },
        ));
        js.publish(
            names.command("create_account"),
            Envelope::new(0, 0, input).encode().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("logged");
    }
}

/// Delivers `ENGINE` from the start (as a restarted writer's re-created consumer does).
async fn deliver_all(js: &jetstream::Context, names: &Names, n: usize) -> Vec<jetstream::Message> {
    let consumer = recovery::open_consumer(js, names, 0)
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let mut out = Vec::new();
    while out.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        out.push(next.expect("delivered").expect("open").expect("message"));
    }
    out
}

/// Applies `batches` (sizes, in order) of `inputs`, waiting for each batch's events to be
/// stored and acking nothing: the writer then dies.
async fn write_then_die(p: &mut Processor, mut inputs: Vec<jetstream::Message>, batches: &[usize]) {
    for &size in batches {
        let rest = inputs.split_off(size);
        let stored = p.apply_batch(inputs).await.expect("applied");
        stored.expect("a batch").await.expect("events stored");
        inputs = rest;
    }
}

async fn stored_keys(js: &jetstream::Context, names: &Names) -> Vec<EventKey> {
    let mut keys = Vec::new();
    for msg in stored_messages(js, &names.events_stream()).await {
        keys.extend(
            bus::events::read(&msg)
                .expect("events")
                .iter()
                .map(LoggedEvent::key),
        );
    }
    keys
}

#[tokio::test]
async fn a_writer_restarted_after_storing_unacked_events_stores_each_event_once() {
    let names = random_names();
    let (nats, js) = connect(&names).await;
    log_commands(&js, &names, 6).await;
    let config = Settings::local().engine;

    // The first writer stores the events of inputs 1..=4 (two batches), then dies unacked.
    let mut first = Processor::new(
        Engine::new(config.clone()),
        0,
        nats.clone(),
        &names,
        Published::default(),
    );
    write_then_die(&mut first, deliver_all(&js, &names, 4).await, &[3, 1]).await;
    drop(first);
    assert_eq!(
        recovery::published_upto(&js, &names).await.expect("floor"),
        0
    );

    // The next one gets every input again, cut elsewhere, and stores only what is missing.
    let published = Published::read_tail(&js, &names, 0).await.expect("tail");
    let mut second = Processor::new(Engine::new(config), 0, nats, &names, published);
    write_then_die(&mut second, deliver_all(&js, &names, 6).await, &[2, 4]).await;

    let expected: Vec<EventKey> = (1..=6).map(|seq| key(seq, 0)).collect();
    assert_eq!(
        stored_keys(&js, &names).await,
        expected,
        "each event once, in order"
    );
    let ranges: Vec<KeyRange> = ["1-0..3-0", "4-0..4-0", "5-0..6-0"]
        .iter()
        .map(|r| KeyRange::parse(r).expect("range"))
        .collect();
    let stream = js.get_stream(names.events_stream()).await.expect("EVENTS");
    for (seq, want) in (1..).zip(ranges) {
        let msg = stream.get_raw_message(seq).await.expect("message");
        assert_eq!(bus::events::range_of(Some(&msg.headers)), Some(want));
    }
    cleanup(&names).await;
}
