//! The `persist` event function: a durable JetStream consumer of `EVENTS` that writes users'
//! positions (opened, modified, partially closed, closed), partial closes and pending orders
//! to PostgreSQL, so history survives everything.
//!
//! Messages hold one event or (since the engine stores a batch at a time) many; both shapes
//! are read by `bus::events::read`.
//!
//! Idempotent: every event's key is `(seq, index)` (the `ENGINE` sequence of the input that
//! caused it, and its place among that input's events).
//! A position or order row remembers the key of the event that last wrote it and is only
//! overwritten by a later one (a partial close's row is keyed by its event), so redelivered,
//! replayed or reordered events change nothing.
//!
//! Failures: while PostgreSQL is unreachable the batch in hand is held (its ack deadline
//! extended) and retried until it is back, so an outage costs no delivery attempt. Any other
//! write error retries the batch event by event: the good ones are written, the message of a
//! bad one is delivered again (up to [`MAX_DELIVER`] times) and then that event alone is moved
//! to the dead-letter stream (`DEAD_LETTERS`, subject `dead.persist.<its subject>`) with an
//! error log, so one poison event never stalls history. A message is acked once each of its
//! events is written or dead-lettered. An unreadable message goes there at once. Only the events in
//! hand are fetched (no read-ahead buffer whose ack deadline could run out), and the short
//! [`ACK_WAIT`] bounds how long a restarted consumer waits for what a killed one held.

mod handle;
mod write;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer, consumer::pull};
use bus::Names;
use bus::nats::{BusError, StreamSettings, ensure_streams};
use futures_util::StreamExt;
use sqlx::PgPool;

use crate::error::is_unavailable;
use crate::observe::WorkerMetrics;
pub use bus::events::EventKey;
use handle::Persist;
pub use write::{write_all, write_event};

/// The durable consumer's name (one per deployment; its position survives restarts).
pub const CONSUMER: &str = "persist";
/// Failed deliveries of one event before it goes to the dead-letter stream.
pub const MAX_DELIVER: i64 = 5;
/// The consumer's own bound on deliveries: a backstop above [`MAX_DELIVER`], so an event whose
/// move to the dead-letter stream failed (NATS gone at that moment) is still delivered again.
const CONSUMER_MAX_DELIVER: i64 = MAX_DELIVER + 3;
/// How long an event may stay unacknowledged before JetStream delivers it again; events held
/// longer (a slow or unreachable database) are kept alive with progress acks.
pub const ACK_WAIT: Duration = Duration::from_secs(5);
/// How long a failed write waits before the event is redelivered.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Most events written in one transaction.
const BATCH: usize = 256;
/// How long one pull waits for the first event of a batch.
const PULL_WAIT: Duration = Duration::from_secs(5);
/// Failed pulls in a row after which the streams and the consumer are set up again.
const REOPEN_AFTER: u32 = 5;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
}

fn consumer_error(e: impl std::fmt::Display) -> PersistError {
    PersistError::Consumer(e.to_string())
}

/// Consumes `EVENTS` until `shutdown` resolves. Creates the streams and the durable consumer
/// when missing (and brings an older consumer's settings up to date).
pub async fn run(
    js: jetstream::Context,
    names: Names,
    db: PgPool,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), PersistError> {
    let mut consumer = set_up(&js, &names).await?;
    let metrics = WorkerMetrics::new("persist");
    let persist = Persist {
        db,
        js,
        names,
        metrics,
    };
    let mut failures = 0u32;
    tokio::pin!(shutdown);
    loop {
        let pulled = tokio::select! {
            () = &mut shutdown => return Ok(()),
            pulled = next_batch(&consumer) => pulled,
        };
        let batch = match pulled {
            Ok(batch) => {
                failures = 0;
                batch
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %e, "persist: pulling events failed; retrying");
                }
                // NATS may have come back without the consumer (or the streams).
                if failures.is_multiple_of(REOPEN_AFTER) {
                    match set_up(&persist.js, &persist.names).await {
                        Ok(again) => consumer = again,
                        Err(e) => tracing::warn!(error = %e, "persist: consumer not set up yet"),
                    }
                }
                tokio::select! {
                    () = &mut shutdown => return Ok(()),
                    () = tokio::time::sleep(RETRY_DELAY) => continue,
                }
            }
        };
        if batch.is_empty() {
            continue;
        }
        // Cut short by a shutdown, the batch is delivered again (writes are idempotent).
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = persist.handle_batch(batch) => {}
        }
    }
}

/// The streams, the dead-letter stream and the durable consumer.
async fn set_up(js: &jetstream::Context, names: &Names) -> Result<PullConsumer, PersistError> {
    ensure_streams(js, names, &StreamSettings::default()).await?;
    ensure_dead_letter_stream(js, names).await?;
    open_consumer(js, names).await
}

/// The stream dead letters go to (file storage, kept until an operator deletes them).
pub async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    names: &Names,
) -> Result<(), PersistError> {
    let s = StreamSettings::default();
    let config = jetstream::stream::Config {
        name: names.dead_letter_stream(),
        description: Some("events a consumer gave up on".into()),
        subjects: vec![names.dead_letters()],
        storage: s.storage,
        num_replicas: s.replicas,
        duplicate_window: s.duplicate_window,
        ..Default::default()
    };
    js.get_or_create_stream(config)
        .await
        .map_err(consumer_error)?;
    Ok(())
}

async fn open_consumer(
    js: &jetstream::Context,
    names: &Names,
) -> Result<PullConsumer, PersistError> {
    let stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(consumer_error)?;
    let config = pull::Config {
        durable_name: Some(CONSUMER.into()),
        ack_policy: jetstream::consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: CONSUMER_MAX_DELIVER,
        max_ack_pending: 1024,
        ..Default::default()
    };
    // Create, or update a consumer an older version made (ack wait and deliveries are
    // editable); if the server refuses, keep the existing one.
    match stream.create_consumer(config).await {
        Ok(consumer) => Ok(consumer),
        Err(e) => {
            tracing::warn!(error = %e, "persist: could not update the consumer; using it as it is");
            stream.get_consumer(CONSUMER).await.map_err(consumer_error)
        }
    }
}

/// Waits (up to [`PULL_WAIT`]) for one event, then takes whatever else is ready, up to
/// [`BATCH`]: nothing is fetched ahead of being handled.
async fn next_batch(consumer: &PullConsumer) -> Result<Vec<jetstream::Message>, String> {
    let mut batch = Vec::new();
    let first = consumer
        .batch()
        .max_messages(1)
        .expires(PULL_WAIT)
        .messages()
        .await;
    collect(first, &mut batch).await?;
    if !batch.is_empty() {
        let rest = consumer.fetch().max_messages(BATCH - 1).messages().await;
        if let Err(e) = collect(rest, &mut batch).await {
            // What arrived is handled; the rest comes with the next pull.
            tracing::debug!(error = %e, "persist: pulling more events failed");
        }
    }
    Ok(batch)
}

async fn collect<E: std::fmt::Display>(
    pulled: Result<pull::Batch, E>,
    into: &mut Vec<jetstream::Message>,
) -> Result<(), String> {
    let mut messages = pulled.map_err(|e| e.to_string())?;
    while let Some(next) = messages.next().await {
        into.push(next.map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Runs `write` until it succeeds or fails for another reason than PostgreSQL being
/// unreachable; meanwhile keeps the held events' deliveries alive (progress acks).
async fn until_reachable<F, Fut>(
    held: &[&jetstream::Message],
    mut write: F,
) -> Result<(), sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), sqlx::Error>>,
{
    let mut backoff =
        bus::backoff::Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
    let mut told = false;
    loop {
        match with_progress(held, write()).await {
            Err(e) if is_unavailable(&e) => {
                if !told {
                    tracing::warn!(error = %e, "persist: PostgreSQL is unreachable; holding the events until it is back");
                    told = true;
                }
                let pause = tokio::time::sleep(backoff.next_delay());
                with_progress(held, pause).await;
            }
            other => {
                if told && other.is_ok() {
                    tracing::info!("persist: PostgreSQL is back");
                }
                return other;
            }
        }
    }
}

/// Awaits `work`, telling JetStream every half ack wait that the events are still in hand.
async fn with_progress<T>(held: &[&jetstream::Message], work: impl Future<Output = T>) -> T {
    tokio::pin!(work);
    let every = ACK_WAIT / 2;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                for msg in held {
                    acknowledge(msg, AckKind::Progress).await;
                }
            }
        }
    }
}

async fn acknowledge(msg: &jetstream::Message, kind: AckKind) {
    if let Err(e) = msg.ack_with(kind).await {
        tracing::warn!(error = %e, "persist: acknowledging failed (the event will be delivered again)");
    }
}
