//! Bulk reading of the `ENGINE` log for replay, decoded off the applying task.
//!
//! Replay costs per input: the server's delivery, the client's parsing of the delivery, the
//! JSON decode (the largest share of the core's work) and the apply. Read, decode and apply
//! on one task use one core for all of it; here one throw-away no-ack consumer streams the
//! range, deliveries are gathered into runs of up to [`DECODE_RUN`], each run is decoded on
//! a task of its own, and the runs come back to the caller strictly in delivery order
//! (`buffered`), so the caller applies in sequence order while the next runs are decoded
//! on the other core. At most [`DECODING`] runs exist at a time: memory stays bounded.
//!
//! Several consumers over disjoint ranges would parallelise the server's side too, but on
//! NATS 2.9 they deliver less in total than one (`cargo bench -p engine --bench replay`).
//!
//! Inputs missing inside the range (deleted from the stream) are skipped, as any consumer
//! skips them. A delivery the client dropped (its subscription buffer full) shows as a jump
//! in the consumer sequence and fails the replay instead of skipping an input.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use bus::EngineInput;
use bus::nats::timestamp_ms;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use tokio::task::JoinHandle;

use super::ServiceError;
use super::process::decode_logged;

/// Inputs per pull request: at most one and a half pulls are outstanding, well under
/// async-nats' per-subscription buffer (65,536 messages, dropped beyond). Pulls of 5,000
/// read faster than pulls of 20,000 here (`cargo bench -p engine --bench replay`).
const PULL: usize = 5_000;

/// Deliveries decoded together on one task.
const DECODE_RUN: usize = 1_000;

/// Runs being decoded (or decoded and waiting) at once.
const DECODING: usize = 4;

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

/// A delivery before decoding.
struct Delivery {
    seq: u64,
    now: i64,
    message: jetstream::Message,
}

/// Reads `from..=to` (as far as the stream has them) in runs of decoded inputs, in order.
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
    let runs = deliveries(messages, to)
        .try_ready_chunks(DECODE_RUN)
        .map(|run| match run {
            Ok(run) => Decoding(tokio::spawn(async move { decode(run) })),
            Err(e) => Decoding(tokio::spawn(async move { Err(e.1) })),
        })
        .buffered(DECODING)
        .boxed();
    Ok(Reader { runs, stream, name })
}

/// The decoded runs of a replay, and its consumer to delete when done.
pub struct Reader {
    runs: stream::BoxStream<'static, Result<Vec<Logged>, ServiceError>>,
    stream: jetstream::stream::Stream<()>,
    name: String,
}

impl Reader {
    pub async fn next(&mut self) -> Option<Result<Vec<Logged>, ServiceError>> {
        self.runs.next().await
    }

    /// Deletes the consumer (it would go after its inactivity threshold anyway, but the
    /// server keeps filling its last pull until then). A failed delete is not an error.
    pub async fn finish(self) {
        drop(self.runs);
        let _ = self.stream.delete_consumer(&self.name).await;
    }
}

/// The deliveries up to `to`, or to the stream's end, checked for lost deliveries.
fn deliveries(
    messages: pull::Stream,
    to: u64,
) -> impl Stream<Item = Result<Delivery, ServiceError>> + Send + 'static {
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
                Ok((d, last)) => *last || d.seq >= to,
                Err(_) => true,
            };
            match item {
                Ok((d, _)) if d.seq > to => None,
                item => Some((item.map(|(d, _)| d), (messages, delivered + 1, done))),
            }
        },
    )
}

/// One delivery, which must be the consumer's `expected`th; and whether the stream ends there.
fn delivery(msg: jetstream::Message, expected: u64) -> Result<(Delivery, bool), ServiceError> {
    let info = msg.info().map_err(nats("replay delivery info"))?;
    if info.consumer_sequence != expected {
        return Err(ServiceError::Nats(format!(
            "replay lost a delivery before stream sequence {}",
            info.stream_sequence
        )));
    }
    let (seq, last) = (info.stream_sequence, info.pending == 0);
    let now = timestamp_ms(info);
    let d = Delivery {
        seq,
        now,
        message: msg,
    };
    Ok((d, last))
}

fn decode(run: Vec<Delivery>) -> Result<Vec<Logged>, ServiceError> {
    Ok(run
        .into_iter()
        .map(|d| Logged {
            seq: d.seq,
            now: d.now,
            input: decode_logged(&d.message.payload, d.seq),
        })
        .collect())
}

/// A run's decoding task, stopped if the replay is dropped before the run is needed.
struct Decoding(JoinHandle<Result<Vec<Logged>, ServiceError>>);

impl Future for Decoding {
    type Output = Result<Vec<Logged>, ServiceError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx).map(|joined| {
            joined.unwrap_or_else(|e| Err(ServiceError::Nats(format!("replay decoder: {e}"))))
        })
    }
}

impl Drop for Decoding {
    fn drop(&mut self) {
        self.0.abort();
    }
}
