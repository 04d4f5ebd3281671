//! The `persist` event function: a durable JetStream consumer of `EVENTS` that writes users'
//! positions (opened, modified, closed) to PostgreSQL, so history survives everything.
//!
//! Idempotent: every event's key is `(seq, index)` (the `ENGINE` sequence of the input that
//! caused it, and its place among that input's events, from `Nats-Msg-Id = "<seq>-<index>"`).
//! A position row remembers the key of the event that last wrote it and is only overwritten
//! by a later one, so redelivered, replayed or reordered events change nothing.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::pull};
use bus::nats::{BusError, StreamSettings, ensure_streams};
use bus::{ClosedPosition, Envelope, Event, Names, Position};
use futures_util::StreamExt;
use sqlx::PgPool;

/// The durable consumer's name (one per deployment; its position survives restarts).
pub const CONSUMER: &str = "persist";
/// How long a failed write waits before the event is redelivered.
const RETRY_DELAY: Duration = Duration::from_secs(1);
/// Most events written in one transaction.
const BATCH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("consumer: {0}")]
    Consumer(String),
}

/// The key that makes a write idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct EventKey {
    pub seq: u64,
    pub index: u32,
}

impl EventKey {
    /// Reads `"<seq>-<index>"`.
    pub fn parse(msg_id: &str) -> Option<Self> {
        let (seq, index) = msg_id.split_once('-')?;
        Some(Self {
            seq: seq.parse().ok()?,
            index: index.parse().ok()?,
        })
    }
}

/// Consumes `EVENTS` until `shutdown` resolves. Creates the streams and the durable consumer
/// when missing.
pub async fn run(
    js: jetstream::Context,
    names: Names,
    db: PgPool,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), PersistError> {
    ensure_streams(&js, &names, &StreamSettings::default()).await?;
    let stream = js
        .get_stream(names.events_stream())
        .await
        .map_err(|e| PersistError::Consumer(e.to_string()))?;
    let consumer = stream
        .get_or_create_consumer(
            CONSUMER,
            pull::Config {
                durable_name: Some(CONSUMER.into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                ack_wait: Duration::from_secs(30),
                max_ack_pending: 1024,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| PersistError::Consumer(e.to_string()))?;
    // Whatever has arrived is written together, in one transaction (up to BATCH events).
    let mut batches = consumer
        .messages()
        .await
        .map_err(|e| PersistError::Consumer(e.to_string()))?
        .ready_chunks(BATCH);
    tokio::pin!(shutdown);
    loop {
        let next = tokio::select! {
            () = &mut shutdown => return Ok(()),
            next = batches.next() => next,
        };
        let Some(batch) = next else {
            return Err(PersistError::Consumer("the event stream ended".into()));
        };
        let mut messages = Vec::with_capacity(batch.len());
        for item in batch {
            match item {
                Ok(msg) => messages.push(msg),
                Err(e) => tracing::warn!(error = %e, "persist: receiving an event failed"),
            }
        }
        handle_batch(&db, &messages).await;
    }
}

/// The key and event of a delivered message, or how to acknowledge it if it has none.
fn decode(msg: &jetstream::Message) -> Result<(EventKey, Event), AckKind> {
    let key = msg
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .and_then(|v| EventKey::parse(v.as_str()));
    let Some(key) = key else {
        tracing::error!(subject = %msg.subject, "persist: event without a <seq>-<index> id");
        return Err(AckKind::Term);
    };
    Envelope::<Event>::decode(&msg.payload)
        .map(|envelope| (key, envelope.body))
        .map_err(|e| {
            tracing::error!(error = %e, subject = %msg.subject, "persist: unreadable event");
            AckKind::Term
        })
}

/// Writes a batch of delivered events in one transaction and acknowledges each: written ones
/// `Ack`, unreadable ones `Term` (logged, never retried forever); if the transaction fails,
/// every readable event is redelivered later.
async fn handle_batch(db: &PgPool, messages: &[jetstream::Message]) {
    let decoded: Vec<_> = messages.iter().map(decode).collect();
    let written = write_all(db, decoded.iter().filter_map(|d| d.as_ref().ok())).await;
    if let Err(e) = &written {
        tracing::warn!(error = %e, events = messages.len(), "persist: write failed, will retry");
    }
    for (msg, d) in messages.iter().zip(&decoded) {
        let ack = match (d, &written) {
            (Err(kind), _) => *kind,
            (Ok(_), Ok(())) => AckKind::Ack,
            (Ok(_), Err(_)) => AckKind::Nak(Some(RETRY_DELAY)),
        };
        if let Err(e) = msg.ack_with(ack).await {
            tracing::warn!(error = %e, "persist: acknowledging failed (the event will be redelivered)");
        }
    }
}

async fn write_all<'a>(
    db: &PgPool,
    events: impl Iterator<Item = &'a (EventKey, Event)>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    for (key, event) in events {
        write_event(&mut *tx, *key, event).await?;
    }
    tx.commit().await
}

/// Applies one event to PostgreSQL; a no-op for events older than what a row already holds.
pub async fn write_event<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: EventKey,
    event: &Event,
) -> Result<(), sqlx::Error> {
    match event {
        // The user row is written by signup; the engine account has nothing to persist.
        Event::AccountCreated { .. } => Ok(()),
        Event::PositionOpened { position } | Event::PositionModified { position, .. } => {
            upsert(db, key, position, None).await
        }
        Event::PositionClosed { position } => {
            upsert(db, key, &position.position, Some(position)).await
        }
    }
}

async fn upsert<'c>(
    db: impl sqlx::PgExecutor<'c>,
    key: EventKey,
    p: &Position,
    closed: Option<&ClosedPosition>,
) -> Result<(), sqlx::Error> {
    let id = i64::try_from(p.id.0).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let seq = i64::try_from(key.seq).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let index = i32::try_from(key.index).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    let leverage =
        i32::try_from(p.leverage.value()).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    sqlx::query(
        "INSERT INTO positions (id, user_id, asset, side, quantity, leverage, open_price, margin, \
            liquidation_price, stop_loss, take_profit, opened_at, status, close_price, realized_pnl, \
            close_reason, closed_at, absorbed_loss, event_seq, event_index) \
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20) \
         ON CONFLICT (id) DO UPDATE SET \
            stop_loss = EXCLUDED.stop_loss, take_profit = EXCLUDED.take_profit, \
            status = EXCLUDED.status, close_price = EXCLUDED.close_price, \
            realized_pnl = EXCLUDED.realized_pnl, close_reason = EXCLUDED.close_reason, \
            closed_at = EXCLUDED.closed_at, absorbed_loss = EXCLUDED.absorbed_loss, \
            event_seq = EXCLUDED.event_seq, event_index = EXCLUDED.event_index \
         WHERE (positions.event_seq, positions.event_index) \
             < (EXCLUDED.event_seq, EXCLUDED.event_index)",
    )
    .bind(id)
    .bind(p.user_id.0)
    .bind(p.asset.symbol())
    .bind(match p.side {
        bus::Side::Buy => "buy",
        bus::Side::Sell => "sell",
    })
    .bind(p.quantity.value())
    .bind(leverage)
    .bind(p.open_price.value())
    .bind(p.margin.value())
    .bind(p.liquidation_price.map(|v| v.value()))
    .bind(p.stop_loss.map(|v| v.value()))
    .bind(p.take_profit.map(|v| v.value()))
    .bind(p.opened_at)
    .bind(if closed.is_some() { "closed" } else { "open" })
    .bind(closed.map(|c| c.close_price.value()))
    .bind(closed.map(|c| c.realized_pnl.value()))
    .bind(closed.map(|c| c.close_reason.as_str()))
    .bind(closed.map(|c| c.closed_at))
    .bind(closed.map(|c| c.absorbed_loss.value()))
    .bind(seq)
    .bind(index)
    .execute(db)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_parse_and_order() {
        assert_eq!(
            EventKey::parse("12-0"),
            Some(EventKey { seq: 12, index: 0 })
        );
        assert!(EventKey::parse("12-1") > EventKey::parse("12-0"));
        assert!(EventKey::parse("13-0") > EventKey::parse("12-9"));
        for bad in ["", "12", "a-1", "1-b", "-1", "1-"] {
            assert_eq!(EventKey::parse(bad), None, "{bad}");
        }
    }
}
