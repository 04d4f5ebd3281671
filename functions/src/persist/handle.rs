//! One pulled batch of `EVENTS` messages: read, written, acked; the failure paths (event by
//! event, redelivery, dead letters) as the parent module describes them.

use async_nats::jetstream::{self, AckKind};
use bus::Names;
use bus::events::{LoggedEvent, MAX_BATCH_BYTES, encode_batches, read};
use sqlx::PgPool;

use super::{CONSUMER, MAX_DELIVER, RETRY_DELAY, acknowledge, until_reachable, write};
use crate::observe::WorkerMetrics;

pub(super) struct Persist {
    pub(super) db: PgPool,
    pub(super) js: jetstream::Context,
    pub(super) names: Names,
    pub(super) metrics: WorkerMetrics,
}

/// A delivered message and the events it holds.
type Held = (jetstream::Message, Vec<LoggedEvent>);

impl Persist {
    /// Writes a batch in one transaction; if that fails for anything but an outage, event by
    /// event, so that the good ones are written and only a bad one is retried.
    pub(super) async fn handle_batch(&self, messages: Vec<jetstream::Message>) {
        self.metrics.batch(messages.len(), messages.last());
        let mut held: Vec<Held> = Vec::with_capacity(messages.len());
        for msg in messages {
            match read(&msg) {
                Ok(events) => held.push((msg, events)),
                Err(e) => {
                    let reason = e.to_string();
                    if self.dead_letter(&msg, None, &reason).await {
                        acknowledge(&msg, AckKind::Term).await;
                    } else {
                        acknowledge(&msg, AckKind::Nak(Some(RETRY_DELAY))).await;
                    }
                }
            }
        }
        let in_hand: Vec<&jetstream::Message> = held.iter().map(|(m, _)| m).collect();
        let events = || held.iter().flat_map(|(_, events)| events);
        let all = || write::write_all(&self.db, events().map(|e| (e.key(), &e.event)));
        match until_reachable(&in_hand, all).await {
            Ok(()) => {
                self.metrics.written(events().count());
                for (msg, events) in &held {
                    events.iter().for_each(write::log_written);
                    acknowledge(msg, AckKind::Ack).await;
                }
                return;
            }
            Err(e) => tracing::warn!(
                error = %e, events = events().count(),
                "persist: a batch failed; writing its events one by one"
            ),
        }
        for (msg, events) in &held {
            self.one_by_one(msg, events).await;
        }
    }

    /// Writes a message's events one at a time. The message is acked when each is written or
    /// dead-lettered, else delivered again (written events are then no-ops).
    async fn one_by_one(&self, msg: &jetstream::Message, events: &[LoggedEvent]) {
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let mut again = false;
        for logged in events {
            let one = || write::write_event(&self.db, logged.key(), &logged.event);
            match until_reachable(&[msg], one).await {
                Ok(()) => {
                    self.metrics.written(1);
                    write::log_written(logged);
                }
                Err(e) if delivered >= MAX_DELIVER => {
                    let reason = format!("write failed {delivered} times: {e}");
                    let alone = (events.len() > 1).then_some(logged);
                    again |= !self.dead_letter(msg, alone, &reason).await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, delivered, key = %logged.key(), "persist: an event failed; it will be delivered again");
                    again = true;
                }
            }
        }
        if again {
            acknowledge(msg, AckKind::Nak(Some(RETRY_DELAY))).await;
        } else {
            acknowledge(msg, AckKind::Ack).await;
        }
    }

    /// Stores what persist gives up on in the dead-letter stream, with the reason: the whole
    /// message (same payload and headers), or `alone`, one event of a batch, as a batch of
    /// its own. True when stored.
    async fn dead_letter(
        &self,
        msg: &jetstream::Message,
        alone: Option<&LoggedEvent>,
        reason: &str,
    ) -> bool {
        let mut headers = msg.headers.clone().unwrap_or_default();
        let payload = match alone
            .and_then(|e| encode_batches(std::slice::from_ref(e), MAX_BATCH_BYTES).pop())
        {
            Some(letter) => {
                headers.insert(
                    async_nats::header::NATS_MESSAGE_ID,
                    letter.range.to_string().as_str(),
                );
                letter.payload.into()
            }
            None => msg.payload.clone(),
        };
        let id = headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .map(|v| v.to_string())
            .unwrap_or_default();
        tracing::error!(subject = %msg.subject, id, reason, "persist: giving up on an event; moved to the dead-letter stream");
        // Header values are one line.
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        headers.insert("Persist-Error", reason.as_str());
        let subject = self.names.dead_letter(CONSUMER, &msg.subject);
        let stored = match self
            .js
            .publish_with_headers(subject, headers, payload)
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match stored {
            Ok(()) => {
                self.metrics.dead_lettered(1);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "persist: could not store a dead letter; the event will be delivered again");
                false
            }
        }
    }
}
