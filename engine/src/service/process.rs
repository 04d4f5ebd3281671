//! The hot path: apply a batch of `ENGINE` inputs in stream order, send each reply to its
//! caller at once, publish the events into `EVENTS`, and only when JetStream has stored them
//! ack the batch. Queries are answered from the same state between batches.

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::{self, message::PublishMessage};
use bus::nats::{REPLY_TO_HEADER, timestamp_ms};
use bus::request_id::{REQUEST_ID_HEADER, of_headers};
use bus::{EngineInput, Envelope, Names, Query};
use tokio::time::Instant;

use super::ServiceError;
use super::observe::EngineMetrics;
use crate::{Engine, Outcome};

/// The stream sequence and the JetStream timestamp (ms) of a delivered input.
pub fn position(msg: &jetstream::Message) -> Result<(u64, i64), ServiceError> {
    let info = msg
        .info()
        .map_err(|e| ServiceError::Nats(format!("input without delivery info: {e}")))?;
    Ok((info.stream_sequence, timestamp_ms(info)))
}

/// Applies one logged input. An unreadable input is skipped (and skipped again on every
/// replay, so the state stays a function of the log).
pub fn apply_logged(engine: &mut Engine, payload: &[u8], seq: u64, now: i64) -> Option<Outcome> {
    decode_logged(payload, seq).map(|input| engine.apply(input, now))
}

pub(super) fn decode_logged(payload: &[u8], seq: u64) -> Option<EngineInput> {
    match Envelope::<EngineInput>::decode(payload) {
        Ok(envelope) => Some(envelope.body),
        Err(e) => {
            tracing::error!(seq, "skipping an unreadable ENGINE input: {e}");
            None
        }
    }
}

/// A batch that is applied and replied to, waiting for JetStream to store its events; yields
/// the input to ack.
pub type InFlight = Pin<Box<dyn Future<Output = Result<jetstream::Message, ServiceError>> + Send>>;

/// Acks a settled batch. AckPolicy::All: acking its last input acks every input up to it,
/// so batches must be settled in order. Replies were written to this connection before, so
/// the server sees them before the ack.
pub async fn ack(last: &jetstream::Message) -> Result<(), ServiceError> {
    last.ack().await.map_err(nats("ack"))
}

pub struct Processor {
    pub engine: Engine,
    /// The last `ENGINE` sequence applied.
    pub last_seq: u64,
    client: async_nats::Client,
    js: jetstream::Context,
    names: Names,
    metrics: EngineMetrics,
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ServiceError {
    move |e| ServiceError::Nats(format!("{what}: {e}"))
}

impl Processor {
    pub fn new(engine: Engine, last_seq: u64, client: async_nats::Client, names: Names) -> Self {
        let js = jetstream::new(client.clone());
        Self {
            engine,
            last_seq,
            client,
            js,
            names,
            metrics: EngineMetrics::new(),
        }
    }

    /// Applies `batch` (in delivery order) and sends the replies. Returns the batch's last
    /// input once its events are stored: the caller acks it (ack-all), in batch order.
    /// Inputs at or below `last_seq` (redeliveries) are not applied again.
    pub async fn apply_batch(
        &mut self,
        mut batch: Vec<jetstream::Message>,
    ) -> Result<Option<InFlight>, ServiceError> {
        let mut stored = Vec::new();
        let started = Instant::now();
        for msg in &batch {
            let (seq, now) = position(msg)?;
            if seq <= self.last_seq {
                continue;
            }
            if seq != self.last_seq + 1 {
                tracing::warn!(seq, last = self.last_seq, "gap in ENGINE sequences");
            }
            self.last_seq = seq;
            let Some(input) = decode_logged(&msg.payload, seq) else {
                continue;
            };
            self.metrics.applied(&input);
            let request_id = of_headers(msg.headers.as_ref());
            if let (Some(request_id), EngineInput::Command(c)) = (request_id, &input) {
                tracing::info!(request_id, seq, kind = c.command.kind(), "command applied");
            }
            let outcome = self.engine.apply(input, now);
            // The caller is waiting: answer before storing events. Events are stored before
            // the ack, so a crash in between replays this input and publishes them then.
            let reply_to = msg.headers.as_ref().and_then(|h| h.get(REPLY_TO_HEADER));
            if let (Some(reply), Some(to)) = (outcome.reply, reply_to) {
                let body = Envelope::new(seq, now, reply).encode();
                self.client
                    .publish(to.to_string(), body.into())
                    .await
                    .map_err(nats("reply"))?;
            }
            for (index, event) in outcome.events.into_iter().enumerate() {
                let subject = self.names.event(event.kind());
                let publish = PublishMessage::build()
                    .payload(Envelope::new(seq, now, event).encode().into())
                    .message_id(format!("{seq}-{index}"));
                // The request that caused the event travels with it (persist logs it).
                let publish = match request_id {
                    Some(id) => publish.header(REQUEST_ID_HEADER, id),
                    None => publish,
                };
                let ack = self
                    .js
                    .send_publish(subject, publish)
                    .await
                    .map_err(nats("event publish"))?;
                stored.push(ack);
            }
        }
        let Some(last) = batch.pop() else {
            return Ok(None);
        };
        // `pending`: inputs in the stream not yet delivered to this writer, i.e. its lag.
        let pending = last.info().map_or(0, |i| i.pending);
        let size = batch.len() + 1;
        self.metrics
            .batch(size, started.elapsed(), self.last_seq, pending);
        Ok(Some(Box::pin(async move {
            for ack in stored {
                ack.await.map_err(nats("event store"))?;
            }
            Ok(last)
        })))
    }

    /// Answers one query (core NATS request/reply) from the current state.
    pub async fn answer(&self, msg: async_nats::Message) {
        let Some(reply_to) = msg.reply else {
            return;
        };
        let query = match Envelope::<Query>::decode(&msg.payload) {
            Ok(q) => q.body,
            Err(e) => {
                tracing::warn!("unreadable query: {e}");
                return;
            }
        };
        let answer = self.engine.query(&query);
        let body = Envelope::new(self.last_seq, 0, answer).encode();
        if let Err(e) = self.client.publish(reply_to, body.into()).await {
            tracing::warn!("could not answer a query: {e}");
        }
    }
}
