//! The engine process: the pure core behind NATS JetStream (feature `service`).
//!
//! [`run`] connects, makes sure the streams exist, takes the single-writer lock, recovers
//! (newest snapshot + replay of `ENGINE`), then serves: pulls inputs in stream order,
//! applies them, replies to each caller, publishes each batch's events into `EVENTS` (none a
//! crashed writer stored already) and acks; answers
//! queries between batches; snapshots every N inputs or T seconds. On shutdown it stores a
//! last snapshot and frees the lock. The README's "Engine service" section has the story.

mod lease;
mod log_reader;
#[cfg(feature = "mongo")]
pub mod mongo;
pub mod observe;
mod process;
mod published;
pub mod recovery;
mod settings;
pub mod snapshot;
mod writer;

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull};
use bus::backoff::Backoff;
use bus::nats::{BusError, ensure_streams};
use futures_util::stream::FuturesOrdered;
use futures_util::{FutureExt, StreamExt};
use tokio::time::Instant;

pub use lease::{Lease, bucket_name as lock_bucket_name};
pub use observe::EngineStatus;
use process::InFlight;
pub use process::{Processor, apply_logged};
pub use published::Published;
pub use settings::Settings;
pub use snapshot::SnapshotStore;
use writer::{SnapshotPolicy, SnapshotWriter};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("nats: {0}")]
    Nats(String),
    #[error(transparent)]
    Bus(#[from] BusError),
    #[error("snapshot store: {0}")]
    Snapshot(String),
    #[error("lost the writer lock: {0}")]
    LockLost(String),
    #[error(
        "ENGINE inputs from {needed} are gone (stream starts at {first}) and no snapshot covers them"
    )]
    Gap { needed: u64, first: u64 },
}

/// Connects to the snapshot store chosen by the settings (MongoDB when `MONGODB_URL` is set).
pub async fn connect_store(settings: &Settings) -> Result<SnapshotStore, ServiceError> {
    if let Some(url) = &settings.mongodb_url {
        #[cfg(feature = "mongo")]
        return Ok(SnapshotStore::Mongo(mongo::MongoStore::connect(url).await?));
        #[cfg(not(feature = "mongo"))]
        {
            let _ = url;
            return Err(ServiceError::Config(
                "MONGODB_URL is set but this build has no MongoDB support (feature `mongo`)".into(),
            ));
        }
    }
    let pool = migrations::connect_and_migrate(&settings.database_url, 4)
        .await
        .map_err(|e| ServiceError::Snapshot(format!("postgres: {e}")))?;
    Ok(SnapshotStore::Postgres(pool))
}

/// Runs the engine until `shutdown` completes (clean stop) or a fatal error (bad settings, a
/// gap in the log). Anything else (NATS or the snapshot store unreachable, the writer lease
/// lost in an outage) stops writing at once; the engine then waits, takes the lease again,
/// recovers from the newest snapshot and the log, and serves again: it never exits for an
/// outage, so neither the local runner nor a deployment has to restart it.
pub async fn run(
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    run_with_status(settings, EngineStatus::default(), shutdown).await
}

/// [`run`], keeping `status` (what `/readyz` reports: lease held, serving) up to date.
pub async fn run_with_status(
    settings: Settings,
    status: EngineStatus,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    status.export_snapshot_age();
    tokio::pin!(shutdown);
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let mut lost_lease = None;
    loop {
        let started = Instant::now();
        let life = run_once(&settings, &status, shutdown.as_mut(), &mut lost_lease).await;
        status.set_lease_held(false);
        let error = match life {
            Ok(()) => return Ok(()),
            Err(e) if e.is_fatal() => return Err(e),
            Err(e) => e,
        };
        if started.elapsed() > Duration::from_secs(60) {
            backoff.reset();
        }
        let delay = backoff.next_delay();
        tracing::error!(
            retry_in_ms = delay.as_millis() as u64,
            "engine stopped writing: {error}; it will recover and serve again"
        );
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = shutdown.as_mut() => return Ok(()),
        }
    }
}

impl ServiceError {
    /// Errors that another attempt cannot fix; the rest are outages the engine rides out.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Config(_) | Self::Gap { .. })
    }
}

/// One life of a writer: connect, take the lease, recover, serve until shutdown or an error.
/// `lost_lease`: the revision of a lease an earlier life lost (set here when this one does).
async fn run_once(
    settings: &Settings,
    status: &EngineStatus,
    mut shutdown: std::pin::Pin<&mut (impl Future<Output = ()> + Send)>,
    lost_lease: &mut Option<u64>,
) -> Result<(), ServiceError> {
    let client = async_nats::ConnectOptions::new()
        .name("engine")
        .connect(&settings.nats_url)
        .await
        .map_err(|e| ServiceError::Nats(format!("connect: {e}")))?;
    let js = jetstream::new(client.clone());
    ensure_streams(&js, &settings.names, &settings.streams).await?;
    let store = connect_store(settings).await?;
    let mut lease = tokio::select! {
        lease = Lease::acquire(&js, &settings.names, &settings.instance_id, settings.lock_ttl, lost_lease.take()) => lease?,
        () = shutdown.as_mut() => return Ok(()),
    };
    status.set_lease_held(true);
    let result = serve(settings, status, client, store, &mut lease, shutdown).await;
    match &result {
        Err(ServiceError::LockLost(_)) => *lost_lease = Some(lease.revision()),
        // A clean stop frees the lock; after an outage it may still be ours to take back.
        Ok(()) => lease.release().await,
        Err(_) => *lost_lease = Some(lease.revision()),
    }
    result
}

/// Recovers the state: newest readable snapshot, then a silent replay up to what the
/// previous writer published. Returns the engine, the snapshot's and the published sequence.
async fn recover(
    settings: &Settings,
    js: &jetstream::Context,
    store: &SnapshotStore,
) -> Result<(crate::Engine, u64, u64), ServiceError> {
    let names = &settings.names;
    let loading = Instant::now();
    let (mut engine, snapshot_seq) =
        recovery::load_newest(store, &names.engine_stream(), &settings.engine).await?;
    let load = loading.elapsed();
    let published = recovery::published_upto(js, names).await?.max(snapshot_seq);
    let started = Instant::now();
    let replayed =
        recovery::replay(js, names, &mut engine, snapshot_seq, published, |_, _| {}).await?;
    // The price rules are this process's settings; they apply from the first input this
    // writer publishes (the replayed ones keep the answers already given under the old ones).
    if engine.set_price_rules(&settings.engine) {
        let c = engine.config();
        tracing::info!(
            allow_simulated = c.allow_simulated_prices,
            price_stale_after_ms = c.price_stale_after_ms,
            "price rules taken from the settings"
        );
    }
    observe::recovered(load, started.elapsed(), replayed);
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let per_sec = (replayed as f64 / secs) as u64;
    let load_ms = load.as_millis() as u64;
    tracing::info!(
        snapshot_seq,
        load_ms,
        published,
        replayed,
        per_sec,
        "recovered"
    );
    Ok((engine, snapshot_seq, published))
}

/// Batches applied and replied to whose events are not stored yet. A bound keeps memory and
/// the work redone after a crash small; in order, so acks (ack-all) go out in order.
const MAX_IN_FLIGHT: usize = 4;

/// Waits until at most `keep` batches are in flight, acking each settled one in order.
async fn settle(in_flight: &mut FuturesOrdered<InFlight>, keep: usize) -> Result<(), ServiceError> {
    while in_flight.len() > keep {
        if let Some(done) = in_flight.next().await {
            process::ack(&done?).await?;
        }
    }
    Ok(())
}

/// The writer's durable consumer, re-created to deliver from `published + 1`.
async fn open_inputs(
    js: &jetstream::Context,
    names: &bus::Names,
    published: u64,
    batch: usize,
) -> Result<pull::Stream, ServiceError> {
    recovery::open_consumer(js, names, published)
        .await?
        .stream()
        .max_messages_per_batch(batch)
        .heartbeat(Duration::from_secs(5))
        .expires(Duration::from_secs(30))
        .messages()
        .await
        .map_err(|e| ServiceError::Nats(format!("pull: {e}")))
}

/// `first` and whatever else is already delivered, up to `max` inputs.
fn with_ready(
    inputs: &mut pull::Stream,
    first: jetstream::Message,
    max: usize,
) -> Vec<jetstream::Message> {
    let mut batch = vec![first];
    while batch.len() < max {
        match inputs.next().now_or_never() {
            Some(Some(Ok(m))) => batch.push(m),
            _ => break,
        }
    }
    batch
}

/// Applies a batch if this engine still certainly holds the lease; its event stores join
/// the pipeline (after making room in it).
async fn apply(
    p: &mut Processor,
    in_flight: &mut FuturesOrdered<InFlight>,
    lease: &mut Lease,
    batch: Vec<jetstream::Message>,
) -> Result<(), ServiceError> {
    settle(in_flight, MAX_IN_FLIGHT - 1).await?;
    if !lease.is_valid() {
        lease.renew().await?;
        if !lease.is_valid() {
            return Err(ServiceError::LockLost("lease expired".into()));
        }
    }
    if let Some(stored) = p.apply_batch(batch).await? {
        in_flight.push_back(stored);
    }
    Ok(())
}

async fn serve(
    settings: &Settings,
    status: &EngineStatus,
    client: async_nats::Client,
    store: SnapshotStore,
    lease: &mut Lease,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    let js = jetstream::new(client.clone());
    let names = &settings.names;
    let (engine, snapshot_seq, published) = recover(settings, &js, &store).await?;
    let stored = Published::read_tail(&js, names, published).await?;
    let mut inputs = open_inputs(&js, names, published, settings.batch).await?;
    let mut queries = client
        .subscribe(names.query())
        .await
        .map_err(|e| ServiceError::Nats(format!("query subscription: {e}")))?;
    let policy = SnapshotPolicy {
        every: settings.snapshot_every,
        interval: settings.snapshot_interval,
        keep: settings.snapshot_keep,
        purge_inputs: settings.purge_inputs,
    };
    let mut snapshots = SnapshotWriter::start(
        store,
        js,
        names.clone(),
        policy,
        snapshot_seq,
        status.clone(),
    );
    let mut p = Processor::new(engine, published, client, names, stored);
    let mut in_flight = FuturesOrdered::<InFlight>::new();
    let mut renew = tokio::time::interval(lease.renew_every());
    let mut snapshot_timer = tokio::time::interval(settings.snapshot_interval);
    tokio::pin!(shutdown);
    tracing::info!(from = published + 1, "serving");
    status.set_serving(true);
    let outcome: Result<(), ServiceError> = loop {
        let timer = tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            _ = renew.tick() => match lease.renew().await {
                Ok(()) => continue,
                Err(e) => break Err(e),
            },
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                match done {
                    Ok(last) => if let Err(e) = process::ack(&last).await { break Err(e) },
                    Err(e) => break Err(e),
                }
                false
            }
            Some(q) = queries.next() => { p.answer(q).await; continue; }
            _ = snapshot_timer.tick() => true,
            next = inputs.next() => {
                let first = match next {
                    None => break Err(ServiceError::Nats("the ENGINE consumer ended".into())),
                    Some(Err(e)) => { tracing::warn!("pulling inputs: {e}"); continue; }
                    Some(Ok(m)) => m,
                };
                let batch = with_ready(&mut inputs, first, settings.batch);
                if let Err(e) = apply(&mut p, &mut in_flight, lease, batch).await { break Err(e) }
                false
            }
        };
        // A snapshot covers acked inputs only: settle everything in flight first.
        if snapshots.is_due(p.last_seq, timer) {
            if let Err(e) = settle(&mut in_flight, 0).await {
                break Err(e);
            }
            snapshots.take(&p.engine, p.last_seq);
        }
    };
    if outcome.is_ok() {
        let settled = settle(&mut in_flight, 0).await;
        if settled.is_ok() {
            snapshots.finish(&p.engine, p.last_seq).await;
            tracing::info!(last_seq = p.last_seq, "engine stopped cleanly");
        }
        return settled;
    }
    outcome
}
