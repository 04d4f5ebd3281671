//! Bulk reading of the `ENGINE` log for replay: one throw-away no-ack consumer streams the
//! range in pulls of [`PULL`], and each delivery is checked and decoded on the caller's task.
//!
//! Decoding on other tasks while the caller applies was tried and measured: on 2 cores
//! shared with nats-server it was no faster (the server needs one core to deliver, the
//! client's parsing the other); only on a machine loaded by other work did it win, by taking
//! a larger share of the CPU. Several consumers over disjoint ranges deliver less in total
//! than one on NATS 2.9 (`cargo bench -p engine --bench replay`, docs/benchmarks.md).
//!
//! Inputs missing inside the range (deleted from the stream) are skipped, as any consumer
//! skips them. A delivery the client dropped (its subscription buffer full) shows as a jump
//! in the consumer sequence and fails the replay instead of skipping an input. The read ends
//! at the range's end or where the stream ends, whichever comes first.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use bus::EngineInput;
use bus::nats::timestamp_ms;
use futures_util::{Stream, StreamExt, stream};

use super::ServiceError;
use super::process::decode_logged;

/// Inputs per pull request: at most one and a half pulls are outstanding, well under
/// async-nats' per-subscription buffer (65,536 messages, dropped beyond). Pulls of 20,000
/// read about as fast when the machine is idle and slower when it is loaded
/// (`cargo bench -p engine --bench replay`).
const PULL: usize = 5_000;

/// One input as the log holds it: an unreadable one is `None` (skipped, but counted).
pub struct Logged {
    pub seq: u64,
    /// The JetStream timestamp (ms), the engine's `now` for this input.
    pub now: i64,
    pub input: Option<EngineInput>,
}

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ServiceError {
    move |e| ServiceError::Nats(format!("{what}: {e}"))
}

/// Reads `from..=to` (as far as the stream has them), in order.
pub async fn open(
    js: &jetstream::Context,
    stream_name: &str,
    from: u64,
    to: u64,
) -> Result<Reader, ServiceError> {
    let stream = js
        .get_stream_no_info(stream_name)
        .await
        .map_err(nats("ENGINE stream"))?;
    let consumer = stream
        .create_consumer(pull::Config {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: from,
            },
            ack_policy: AckPolicy::None,
            inactive_threshold: Duration::from_secs(30),
            memory_storage: true,
            ..Default::default()
        })
        .await
        .map_err(nats("replay consumer"))?;
    let name = consumer.cached_info().name.clone();
    let messages = consumer
        .stream()
        .max_messages_per_batch(PULL)
        .messages()
        .await
        .map_err(nats("replay messages"))?;
    let inputs = deliveries(messages, to).boxed();
    Ok(Reader {
        inputs,
        stream,
        name,
    })
}

/// The inputs of a replay, and its consumer to delete when done.
pub struct Reader {
    inputs: stream::BoxStream<'static, Result<Logged, ServiceError>>,
    stream: jetstream::stream::Stream<()>,
    name: String,
}

impl Reader {
    pub async fn next(&mut self) -> Option<Result<Logged, ServiceError>> {
        self.inputs.next().await
    }

    /// Deletes the consumer (it would go after its inactivity threshold anyway, but the
    /// server keeps filling its last pull until then). A failed delete is not an error.
    pub async fn finish(self) {
        drop(self.inputs);
        let _ = self.stream.delete_consumer(&self.name).await;
    }
}

/// The inputs up to `to`, or to the stream's end, checked for lost deliveries.
fn deliveries(
    messages: pull::Stream,
    to: u64,
) -> impl Stream<Item = Result<Logged, ServiceError>> + Send + 'static {
    // (messages, deliveries so far, done)
    stream::unfold(
        (messages, 0u64, false),
        move |(mut messages, delivered, done)| async move {
            if done {
                return None;
            }
            let item = match messages.next().await? {
                Ok(msg) => delivery(msg, delivered + 1),
                Err(e) => Err(ServiceError::Nats(format!("replay: {e}"))),
            };
            let done = match &item {
                Ok((input, last)) => *last || input.seq >= to,
                Err(_) => true,
            };
            match item {
                Ok((d, _)) if d.seq > to => None,
                item => Some((item.map(|(d, _)| d), (messages, delivered + 1, done))),
            }
        },
    )
}

/// One delivery, which must be the consumer's `expected`th, decoded; and whether the stream
/// ends there.
fn delivery(msg: jetstream::Message, expected: u64) -> Result<(Logged, bool), ServiceError> {
    let info = msg.info().map_err(nats("replay delivery info"))?;
    if info.consumer_sequence != expected {
        return Err(ServiceError::Nats(format!(
            "replay lost a delivery before stream sequence {}",
            info.stream_sequence
        )));
    }
    let (seq, last) = (info.stream_sequence, info.pending == 0);
    let now = timestamp_ms(info);
    let input = decode_logged(&msg.payload, seq);
    Ok((Logged { seq, now, input }, last))
}
