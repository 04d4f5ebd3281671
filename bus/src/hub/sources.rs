//! What the hub fans out: quotes from the Redis price stream (one subscription to the
//! all-assets channel for the whole hub; each quote framed once, those already waiting sent
//! together) and engine events from the `EVENTS` stream (one ordered consumer starting at new
//! messages; a message holds one event or a batch, read by `events::read`). Both reconnect
//! with backoff until stopped.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, consumer};
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Shared;
use super::frame;
use super::protocol::ServerMessage;
use super::quotes::QuoteBatch;
use crate::backoff::Backoff;
use crate::events::{self, EventKey};
use crate::market::{MarketQuote, PriceKeys};
use crate::nats::{StreamSettings, ensure_streams};
use crate::{Names, prices};

/// Keeps the hub subscribed to the Redis price stream.
pub(super) async fn redis_quotes(
    url: String,
    keys: PriceKeys,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    loop {
        match subscribe_quotes(&url, &keys, &shared, &mut stop).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "Redis price stream lost; resubscribing"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn subscribe_quotes(
    url: &str,
    keys: &PriceKeys,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(keys.all_channel()).await?;
    // Subscribed first, then the snapshot: no quote falls between the two.
    let mut conn = client.get_multiplexed_async_connection().await?;
    for quote in prices::latest_quotes(&mut conn, keys).await? {
        shared.offer_latest(quote.asset, frame::text(&quote.to_json()), false);
    }
    tracing::info!(channel = %keys.all_channel(), "hub subscribed to the price stream");
    let mut messages = pubsub.into_on_message();
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            msg = messages.next() => {
                let Some(msg) = msg else {
                    return Err(std::io::Error::other("subscription ended").into());
                };
                let mut batch = QuoteBatch::default();
                add_quote(&msg, shared, &mut batch);
                // Quotes that came while the last fan-out ran go out with this one.
                while batch.len() < MAX_BATCH
                    && let Some(Some(msg)) = messages.next().now_or_never()
                {
                    add_quote(&msg, shared, &mut batch);
                }
                if !batch.is_empty() {
                    shared.registry.fan_out_quotes(&Arc::new(batch)).await;
                }
            }
        }
    }
}

/// Most quotes fanned out together (a hub this far behind has bigger problems).
const MAX_BATCH: usize = 64;

/// Frames a quote from the stream once, as its asset's latest and for the fan-out; anything
/// unreadable is skipped.
fn add_quote(msg: &redis::Msg, shared: &Shared, batch: &mut QuoteBatch) {
    let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) else {
        return;
    };
    let Ok(quote) = serde_json::from_str::<MarketQuote>(text) else {
        return;
    };
    shared.stats.count_quote();
    let frame = frame::text(text);
    shared.offer_latest(quote.asset, frame.clone(), true);
    batch.push(quote.asset, frame);
}

/// Keeps the hub reading new engine events and routing them to their users' clients.
pub(super) async fn engine_events(
    nats: async_nats::Client,
    names: Names,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
    // Kept across reconnects: no client sees an event twice.
    let mut forwarded = None;
    loop {
        match consume_events(&nats, &names, &shared, &mut stop, &mut forwarded).await {
            Ok(()) => return,
            Err(e) => tracing::warn!(error = %e, "EVENTS consumer lost; recreating"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff.next_delay()) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn consume_events(
    nats: &async_nats::Client,
    names: &Names,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
    forwarded: &mut Option<EventKey>,
) -> Result<(), String> {
    let js = jetstream::new(nats.clone());
    ensure_streams(&js, names, &StreamSettings::default())
        .await
        .map_err(|e| e.to_string())?;
    let stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(|e| e.to_string())?;
    let config = consumer::push::OrderedConfig {
        deliver_subject: nats.new_inbox(),
        filter_subject: names.events(),
        deliver_policy: consumer::DeliverPolicy::New,
        ..Default::default()
    };
    let consumer = stream
        .create_consumer(config)
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    shared.mark_events_ready();
    tracing::info!(stream = %names.events_stream(), "hub reading engine events");
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            msg = messages.next() => match msg {
                Some(Ok(msg)) => dispatch(&msg, shared, forwarded),
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("the consumer ended".into()),
            },
        }
    }
}

/// Routes each event of a message to its user's clients, skipping any at or below the last
/// key forwarded (the engine stores events in key order; one seen again is a duplicate).
fn dispatch(msg: &async_nats::Message, shared: &Shared, forwarded: &mut Option<EventKey>) {
    let events = match events::read(msg) {
        Ok(events) => events,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable engine events");
            return;
        }
    };
    for logged in events {
        let key = logged.key();
        if forwarded.is_some_and(|last| key <= last) {
            continue;
        }
        *forwarded = Some(key);
        shared.stats.count_event();
        let text = ServerMessage::Event {
            seq: logged.seq,
            event: &logged.event,
        }
        .to_json();
        shared
            .registry
            .fan_out_event(logged.event.user_id(), &Utf8Bytes::from(text));
    }
}
