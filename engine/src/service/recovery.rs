//! Start-up: load the newest readable snapshot, replay the `ENGINE` log after it, and open
//! the durable consumer where the previous engine's published effects end.
//!
//! Two positions matter: the snapshot's sequence `S` (state known up to there) and the
//! consumer's ack floor `A >= S` (replies and events of every input up to `A` were published).
//! Inputs `S+1..=A` are re-applied silently (their effects are out already); the consumer is
//! then re-created to deliver from `A+1`, where each input's effects are published as usual.
//! Re-creating the consumer (under the writer lock) drops the old one's in-flight deliveries,
//! so nothing waits for an ack timeout after a crash.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, pull},
};
use bus::Names;

use super::ServiceError;
use super::log_reader::{self, Logged};
use super::snapshot::{SnapshotStore, decode};
use crate::{Engine, EngineConfig, Outcome};

/// The durable consumer the writing engine pulls from.
pub const DURABLE: &str = "engine";

fn nats<E: std::fmt::Display>(what: &'static str) -> impl Fn(E) -> ServiceError {
    move |e| ServiceError::Nats(format!("{what}: {e}"))
}

/// The newest snapshot that reads back, or a fresh engine at sequence 0.
pub async fn load_newest(
    store: &SnapshotStore,
    stream: &str,
    config: &EngineConfig,
) -> Result<(Engine, u64), ServiceError> {
    for meta in store.list(stream).await? {
        let loaded = store
            .load(&meta)
            .await
            .and_then(|blob| decode(&blob, meta.last_seq).map_err(ServiceError::Snapshot));
        match loaded {
            Ok(mut engine) => {
                engine.set_limits(config);
                tracing::info!(id = meta.id, last_seq = meta.last_seq, "loaded snapshot");
                return Ok((engine, meta.last_seq));
            }
            Err(e) => tracing::error!(
                id = meta.id,
                last_seq = meta.last_seq,
                "skipping an unreadable snapshot: {e}"
            ),
        }
    }
    Ok((Engine::new(config.clone()), 0))
}

/// Up to which sequence the previous writer published every effect (its ack floor).
pub async fn published_upto(js: &jetstream::Context, names: &Names) -> Result<u64, ServiceError> {
    let stream = js
        .get_stream(names.engine_stream())
        .await
        .map_err(nats("ENGINE stream"))?;
    Ok(stream
        .consumer_info(DURABLE)
        .await
        .map(|info| info.ack_floor.stream_sequence)
        .unwrap_or(0))
}

/// Feeds the inputs `after+1..=upto` (as far as the stream has them) to `engine`, calling
/// `each` with every outcome. Returns how many inputs were applied.
pub async fn replay(
    js: &jetstream::Context,
    names: &Names,
    engine: &mut Engine,
    after: u64,
    upto: u64,
    mut each: impl FnMut(u64, Outcome),
) -> Result<u64, ServiceError> {
    let stream_name = names.engine_stream();
    let mut stream = js
        .get_stream(&stream_name)
        .await
        .map_err(nats("ENGINE stream"))?;
    let state = stream
        .info()
        .await
        .map_err(nats("ENGINE info"))?
        .state
        .clone();
    let upto = upto.min(state.last_sequence);
    if state.messages > 0 && state.first_sequence > after + 1 {
        return Err(ServiceError::Gap {
            needed: after + 1,
            first: state.first_sequence,
        });
    }
    if upto <= after {
        return Ok(0);
    }
    let mut reader = log_reader::open(js, &stream_name, after + 1, upto).await?;
    let mut applied = 0;
    while let Some(logged) = reader.next().await {
        let Logged { seq, now, input } = logged?;
        if let Some(input) = input {
            each(seq, engine.apply(input, now));
        }
        applied += 1;
    }
    reader.finish().await;
    Ok(applied)
}

/// (Re-)creates the writer's durable consumer so that it delivers from `after + 1`.
pub async fn open_consumer(
    js: &jetstream::Context,
    names: &Names,
    after: u64,
) -> Result<jetstream::consumer::PullConsumer, ServiceError> {
    let stream = js
        .get_stream(names.engine_stream())
        .await
        .map_err(nats("ENGINE stream"))?;
    if stream.consumer_info(DURABLE).await.is_ok() {
        stream
            .delete_consumer(DURABLE)
            .await
            .map_err(nats("delete old consumer"))?;
    }
    stream
        .create_consumer(pull::Config {
            durable_name: Some(DURABLE.into()),
            description: Some("the writing engine".into()),
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: after + 1,
            },
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 20_000,
            ..Default::default()
        })
        .await
        .map_err(nats("create consumer"))
}
