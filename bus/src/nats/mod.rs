//! The engine's side of NATS, shared by every caller: the JetStream streams (`ENGINE`,
//! `EVENTS`), the request path to the engine ([`EngineClient`]) and the errors callers map to
//! HTTP statuses (`Timeout` -> 504, `Unavailable` -> 503).
//!
//! Wire rules (the engine service implements the other side):
//! - A command is `Envelope<EngineInput::Command>` (JSON) published into `ENGINE` on
//!   `names.command(kind)` with `Nats-Msg-Id` = `<command id>#<fingerprint of the command>`
//!   ([`crate::Fingerprint`], see `client::message_id`) and the header
//!   [`REPLY_TO_HEADER`] naming the caller's inbox; the engine answers `Envelope<Reply>` there.
//! - A price tick is `Envelope<EngineInput::PriceTick>` on `names.tick(asset)`.
//! - A query is `Envelope<Query>` sent with core NATS request/reply on `names.query()`; the
//!   answer is `Envelope<QueryReply>`. Queries are not logged.
//! - Events are stored in `EVENTS` a batch at a time: `Envelope<EventBatch>` on
//!   `names.event_batch()`, each event keyed `(seq, index)` (`seq` = the `ENGINE` sequence of
//!   the input that caused it), `Nats-Msg-Id` = the keys it holds, `"<seq>-<index>..<seq>-<index>"`.
//!   Older engines stored `Envelope<Event>` on `names.event(kind)` with `Nats-Msg-Id` =
//!   `"<seq>-<index>"`; [`crate::events::read`] reads both, and an event's key is the same in
//!   either shape. The engine never stores a key twice (it reads back the tail of `EVENTS` at
//!   start), so readers see each event once unless they read a message again.

mod client;

use std::time::Duration;

use async_nats::jetstream::{self, stream};

use crate::subjects::Names;

pub use client::{DEFAULT_DOWN_GRACE, EngineClient};

/// The header carrying the subject the engine sends a command's reply to.
pub const REPLY_TO_HEADER: &str = "Engine-Reply-To";

/// Why a call to the engine did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// No answer in time. For a command the outcome is unknown until retried with the same id
    /// (the retry returns the first reply, never applies twice). HTTP 504.
    #[error("the engine did not answer in time")]
    Timeout,
    /// NATS, JetStream or the engine is not reachable. HTTP 503.
    #[error("the engine is unavailable: {0}")]
    Unavailable(String),
    /// Something answered with a message we cannot read, or a stream is misconfigured.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// How the streams are created. The defaults suit one server (replicas 1, file storage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSettings {
    pub replicas: usize,
    pub storage: stream::StorageType,
    /// How long JetStream remembers a `Nats-Msg-Id` to drop a re-published duplicate.
    pub duplicate_window: Duration,
    /// Age limit of `ENGINE` inputs; zero keeps them until the engine purges the ones older
    /// than its oldest retained snapshot (the default, so recovery always has its inputs).
    pub engine_max_age: Duration,
    /// Age limit of `EVENTS`.
    pub events_max_age: Duration,
    /// Size limit of each stream in bytes (-1: none).
    pub max_bytes: i64,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            replicas: 1,
            storage: stream::StorageType::File,
            duplicate_window: Duration::from_secs(120),
            engine_max_age: Duration::ZERO,
            events_max_age: Duration::from_secs(7 * 24 * 3600),
            max_bytes: -1,
        }
    }
}

/// Creates `ENGINE` and `EVENTS` when missing, and checks that existing ones cover our
/// subjects. Safe to call from every process at start-up.
pub async fn ensure_streams(
    js: &jetstream::Context,
    names: &Names,
    s: &StreamSettings,
) -> Result<(), BusError> {
    let engine = stream::Config {
        name: names.engine_stream(),
        subjects: vec![names.engine_inputs()],
        max_age: s.engine_max_age,
        ..base_config(s)
    };
    let events = stream::Config {
        name: names.events_stream(),
        subjects: vec![names.events()],
        max_age: s.events_max_age,
        ..base_config(s)
    };
    for config in [engine, events] {
        ensure_stream(js, config).await?;
    }
    Ok(())
}

fn base_config(s: &StreamSettings) -> stream::Config {
    stream::Config {
        storage: s.storage,
        num_replicas: s.replicas,
        duplicate_window: s.duplicate_window,
        max_bytes: s.max_bytes,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        ..Default::default()
    }
}

async fn ensure_stream(js: &jetstream::Context, config: stream::Config) -> Result<(), BusError> {
    let name = config.name.clone();
    let wanted = config.subjects.clone();
    let mut stream = js
        .get_or_create_stream(config)
        .await
        .map_err(|e| BusError::Unavailable(format!("stream {name}: {e}")))?;
    let info = stream
        .info()
        .await
        .map_err(|e| BusError::Unavailable(format!("stream {name}: {e}")))?;
    if wanted.iter().all(|w| info.config.subjects.contains(w)) {
        Ok(())
    } else {
        Err(BusError::Protocol(format!(
            "stream {name} exists with subjects {:?}, expected {wanted:?}",
            info.config.subjects
        )))
    }
}

/// Milliseconds since the epoch of a JetStream timestamp (the engine's `now`).
pub fn timestamp_ms(t: async_nats::jetstream::message::Info<'_>) -> i64 {
    // i128 nanoseconds / 1e6 fits an i64 for any date this platform will see.
    i64::try_from(t.published.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}
