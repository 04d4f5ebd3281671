//! The hot path: apply a batch of `ENGINE` inputs in stream order, send each reply to its
//! caller at once, publish the batch's events into `EVENTS` as one message (a few when large,
//! see `bus::events`), and only when JetStream has stored them ack the batch. Queries are
//! answered from the same state between batches (their encoding and sending off the loop).

use std::future::Future;
use std::pin::Pin;

use async_nats::jetstream::{self, context::PublishAckFuture, message::PublishMessage};
use bus::events::{EventKey, LoggedEvent, MAX_BATCH_BYTES, encode_batches};
use bus::nats::{REPLY_TO_HEADER, timestamp_ms};
use bus::request_id::of_headers;
use bus::{EngineInput, Envelope, Event, Names, Query, QueryReply};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ServiceError;
use super::observe::EngineMetrics;
use super::published::Published;
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
    /// Where event batches go (`names.event_batch()`), built once.
    batch_subject: async_nats::Subject,
    /// Events a previous writer stored already (after a crash): not stored again.
    published: Published,
    /// The current batch's events, in key order (kept to reuse its allocation).
    events: Vec<LoggedEvent>,
    metrics: EngineMetrics,
    answers: Answers,
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ServiceError {
    move |e| ServiceError::Nats(format!("{what}: {e}"))
}

impl Processor {
    /// `published`: what the previous writer stored past `last_seq` (see [`Published`]).
    pub fn new(
        engine: Engine,
        last_seq: u64,
        client: async_nats::Client,
        names: &Names,
        published: Published,
    ) -> Self {
        let js = jetstream::new(client.clone());
        let answers = Answers::start(client.clone());
        Self {
            engine,
            last_seq,
            client,
            js,
            batch_subject: names.event_batch().into(),
            published,
            events: Vec::new(),
            metrics: EngineMetrics::new(),
            answers,
        }
    }

    /// Applies `batch` (in delivery order) and sends the replies. Returns the batch's last
    /// input once its events are stored: the caller acks it (ack-all), in batch order.
    /// Inputs at or below `last_seq` (redeliveries) are not applied again.
    pub async fn apply_batch(
        &mut self,
        mut batch: Vec<jetstream::Message>,
    ) -> Result<Option<InFlight>, ServiceError> {
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
            if let EngineInput::PriceTick(tick) = &input
                && self.engine.refuses(tick)
            {
                self.metrics.refused_tick(seq);
            }
            let request_id = of_headers(msg.headers.as_ref());
            if let (Some(request_id), EngineInput::Command(c)) = (request_id, &input) {
                tracing::info!(request_id, seq, kind = c.command.kind(), "command applied");
            }
            let outcome = self.engine.apply(input, now);
            // The caller is waiting: answer before storing events. Events are stored before
            // the ack, so a crash in between replays this input and stores those of its
            // events that did not make it (see `published`).
            let reply_to = msg.headers.as_ref().and_then(|h| h.get(REPLY_TO_HEADER));
            if let (Some(reply), Some(to)) = (outcome.reply, reply_to) {
                let body = Envelope::new(seq, now, reply).encode();
                self.client
                    .publish(to.to_string(), body.into())
                    .await
                    .map_err(nats("reply"))?;
            }
            self.log(seq, now, request_id, outcome.events);
        }
        let stored = self.store_events().await?;
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

    /// Keeps an input's events for this batch's message, but none a previous writer stored.
    fn log(&mut self, seq: u64, ts: i64, request_id: Option<&str>, events: Vec<Event>) {
        for (index, event) in (0u32..).zip(events) {
            if !self.published.is_empty() && self.published.covers(EventKey { seq, index }) {
                continue;
            }
            self.events.push(LoggedEvent {
                seq,
                index,
                ts,
                // The request that caused the event travels with it (persist logs it).
                request_id: request_id.map(str::to_owned),
                event,
            });
        }
    }

    /// Publishes the batch's events (one message per [`MAX_BATCH_BYTES`]); returns the store
    /// acks to await before the batch is acked. The message id is the key range, so a
    /// re-publish of the same message within the dedup window is dropped as well.
    async fn store_events(&mut self) -> Result<Vec<PublishAckFuture>, ServiceError> {
        let mut stored = Vec::new();
        for batch in encode_batches(&self.events, MAX_BATCH_BYTES) {
            let publish = PublishMessage::build()
                .payload(batch.payload.into())
                .message_id(batch.range.to_string());
            let ack = self
                .js
                .send_publish(self.batch_subject.clone(), publish)
                .await
                .map_err(nats("event publish"))?;
            stored.push(ack);
        }
        self.events.clear();
        Ok(stored)
    }

    /// Answers one query (core NATS request/reply) from the current state: the answer (a
    /// bounded page for listings) is taken here, between batches; encoding and sending it
    /// happen on the [`Answers`] task, off the apply loop.
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
        let answer = self.engine.answer(&query, self.last_seq);
        self.answers.send(reply_to, self.last_seq, answer).await;
    }
}

/// Query answers waiting to be encoded and sent.
const ANSWER_QUEUE: usize = 1024;

type Answer = (async_nats::Subject, u64, QueryReply);

/// The task that encodes and sends query answers. Its queue is bounded: when it is full the
/// loop waits for room (queries then slow down; inputs are not lost, they wait in the log).
/// The task ends when the processor (the sender) is dropped, and is aborted with it.
struct Answers {
    queue: mpsc::Sender<Answer>,
    task: tokio::task::JoinHandle<()>,
}

impl Answers {
    fn start(client: async_nats::Client) -> Self {
        let (queue, mut rx) = mpsc::channel::<Answer>(ANSWER_QUEUE);
        let task = tokio::spawn(async move {
            while let Some((reply_to, seq, answer)) = rx.recv().await {
                let body = Envelope::new(seq, 0, answer).encode();
                if let Err(e) = client.publish(reply_to, body.into()).await {
                    tracing::warn!("could not answer a query: {e}");
                }
            }
        });
        Self { queue, task }
    }

    async fn send(&self, reply_to: async_nats::Subject, seq: u64, answer: QueryReply) {
        if self.queue.send((reply_to, seq, answer)).await.is_err() {
            tracing::warn!("the query answer task stopped");
        }
    }
}

impl Drop for Answers {
    fn drop(&mut self) {
        self.task.abort();
    }
}
