//! The WebSocket hub (port 7070): fans the Redis price stream out to browsers and routes each
//! user's engine events (from `EVENTS`) and fired price alerts ([`alerts`]) to their
//! authenticated connections. The protocol is in
//! [`protocol`] and the README's "WebSocket protocol" section.
//!
//! A slow client never slows the others: the fan-out writes each quote, encoded once
//! ([`frame`]), straight into every healthy client's socket without blocking, and only a
//! client whose socket is full gets a mailbox entry ([`mailbox`]: newest quote wins, bounded
//! queues) that its own connection task drains.
//! Connections are capped, and so are handshakes and connections per address ([`admission`],
//! checked right after accept); a connection's slot is taken once its handshake is done, so
//! half-sent upgrades cannot fill the hub. A client too far behind is disconnected; every
//! connection leaves the registry when it ends, through a drop guard ([`slot`]) that also runs
//! if its task panics. Runs as its own process (`ws-hub`) or as a task ([`run`]).

mod admission;
mod alerts;
mod connect_rate;
mod connection;
mod frame;
pub mod mailbox;
mod metrics;
pub mod probe;
pub mod protocol;
mod quotes;
mod registry;
mod settings;
mod slot;
mod sources;
mod stream;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::auth::TokenVerifier;
use crate::backoff::Backoff;
use crate::market::PriceKeys;
pub use crate::settings::DEV_JWT_SECRET;
use crate::subjects::Names;
use crate::types::Asset;
pub use admission::AdmissionLimits;
use mailbox::{Delivered, Limits};
use quotes::QuoteBatch;
use registry::Registry;
pub use settings::HubSettings;

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
    #[error("nats: {0}")]
    Nats(String),
}

/// Counters of a running hub; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HubStats(Arc<StatsInner>);

#[derive(Debug, Default)]
struct StatsInner {
    connections: AtomicU64,
    rejected: AtomicU64,
    too_slow: AtomicU64,
    quotes_in: AtomicU64,
    events_in: AtomicU64,
    events_ready: AtomicBool,
    sent: AtomicU64,
    events_delivered: AtomicU64,
    conflated: AtomicU64,
    fanouts: AtomicU64,
    fanout_quotes: AtomicU64,
    fanout_micros: AtomicU64,
    /// `hub_fanout_seconds` and `hub_fanout_batch_size`, once the metrics are exported.
    fanout_metrics: std::sync::OnceLock<(::metrics::Histogram, ::metrics::Histogram)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsReport {
    /// Clients connected now.
    pub connections: u64,
    /// Connections refused: the hub was full, or the admission check by address turned them
    /// away (too many handshakes or connections from one address, or in all).
    pub rejected: u64,
    /// Clients disconnected for falling too far behind.
    pub too_slow: u64,
    pub quotes_in: u64,
    pub events_in: u64,
    /// The `EVENTS` consumer is running.
    pub events_ready: bool,
    /// Messages written to clients (quotes, private events, replies).
    pub sent: u64,
    /// Private events written to their users' connections.
    pub events_delivered: u64,
    /// Quotes a slow client never got because a newer one replaced them while its socket
    /// was full.
    pub conflated: u64,
    /// Quote fan-outs done (one pass over every client each).
    pub fanouts: u64,
    /// Quotes those fan-outs carried (more than one each when the hub fell behind).
    pub fanout_quotes: u64,
    /// Wall time spent in them, in microseconds: what one pass over the clients costs.
    pub fanout_micros: u64,
}

impl HubStats {
    fn count_rejected(&self) {
        self.0.rejected.fetch_add(1, Relaxed);
    }
    fn count_too_slow(&self) {
        self.0.too_slow.fetch_add(1, Relaxed);
    }
    fn count_quote(&self) {
        self.0.quotes_in.fetch_add(1, Relaxed);
    }
    fn count_event(&self) {
        self.0.events_in.fetch_add(1, Relaxed);
    }
    /// What a fan-out or a flush delivered: one add per batch, not per message.
    fn count_delivered(&self, d: Delivered) {
        if d.messages > 0 {
            self.0.sent.fetch_add(d.messages, Relaxed);
        }
        if d.events > 0 {
            self.0.events_delivered.fetch_add(d.events, Relaxed);
        }
        if d.conflated > 0 {
            self.0.conflated.fetch_add(d.conflated, Relaxed);
        }
    }

    /// A quote fan-out of `quotes` quotes took `took` (wall time, every part done).
    fn count_fanout(&self, quotes: usize, took: std::time::Duration) {
        self.0.fanouts.fetch_add(1, Relaxed);
        self.0.fanout_quotes.fetch_add(quotes as u64, Relaxed);
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.0.fanout_micros.fetch_add(micros, Relaxed);
        if let Some((seconds, size)) = self.0.fanout_metrics.get() {
            seconds.record(took.as_secs_f64());
            size.record(quotes as f64);
        }
    }

    pub fn report(&self) -> StatsReport {
        let i = &self.0;
        StatsReport {
            connections: i.connections.load(Relaxed),
            rejected: i.rejected.load(Relaxed),
            too_slow: i.too_slow.load(Relaxed),
            quotes_in: i.quotes_in.load(Relaxed),
            events_in: i.events_in.load(Relaxed),
            events_ready: i.events_ready.load(Relaxed),
            sent: i.sent.load(Relaxed),
            events_delivered: i.events_delivered.load(Relaxed),
            conflated: i.conflated.load(Relaxed),
            fanouts: i.fanouts.load(Relaxed),
            fanout_quotes: i.fanout_quotes.load(Relaxed),
            fanout_micros: i.fanout_micros.load(Relaxed),
        }
    }
}

/// What every connection task shares.
struct Shared {
    registry: Registry,
    /// Each asset's latest quote, framed.
    latest: RwLock<[Option<Bytes>; 3]>,
    verifier: TokenVerifier,
    limits: Limits,
    write_timeout: Duration,
    handshake_timeout: Duration,
    send_buffer: usize,
    stats: HubStats,
    stopping: AtomicBool,
}

impl Shared {
    fn new(settings: &HubSettings, stats: HubStats) -> Self {
        Self {
            registry: Registry::new(stats.clone(), settings.fanout_shards),
            latest: RwLock::new([None, None, None]),
            verifier: TokenVerifier::new(settings.jwt_secret.as_bytes()),
            limits: settings.limits,
            write_timeout: settings.write_timeout,
            handshake_timeout: settings.handshake_timeout,
            send_buffer: settings.send_buffer,
            stats,
            stopping: AtomicBool::new(false),
        }
    }

    /// The latest quote of each asset `wanted` picks.
    fn latest_quotes(&self, wanted: impl Fn(Asset) -> bool) -> QuoteBatch {
        let latest = self.latest.read().unwrap_or_else(PoisonError::into_inner);
        let mut batch = QuoteBatch::default();
        for asset in Asset::ALL.into_iter().filter(|a| wanted(*a)) {
            if let Some(frame) = &latest[asset.index()] {
                batch.push(asset, frame.clone());
            }
        }
        batch
    }

    /// Stores a quote's frame as the asset's latest; a snapshot value (`replace = false`)
    /// never overwrites a live one.
    fn offer_latest(&self, asset: Asset, quote: Bytes, replace: bool) {
        let mut latest = self.latest.write().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut latest[asset.index()];
        if replace || slot.is_none() {
            *slot = Some(quote);
        }
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    fn mark_events_ready(&self) {
        self.stats.0.events_ready.store(true, Relaxed);
    }
}

/// Binds `settings.bind` and serves until `shutdown` completes.
pub async fn run(
    settings: HubSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    run_with_stats(settings, HubStats::default(), shutdown).await
}

/// [`run`], reporting into `stats` (which the caller can read or export while it runs).
pub async fn run_with_stats(
    settings: HubSettings,
    stats: HubStats,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    let listener = TcpListener::bind(&settings.bind)
        .await
        .map_err(|e| HubError::Bind(settings.bind.clone(), e))?;
    tracing::info!(addr = %settings.bind, fanout_shards = settings.fanout_shards, "WebSocket hub listening");
    serve(listener, settings, stats, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0), reporting into `stats`.
pub async fn serve(
    listener: TcpListener,
    settings: HubSettings,
    stats: HubStats,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), HubError> {
    let nats = async_nats::connect(&settings.nats_url)
        .await
        .map_err(|e| HubError::Nats(e.to_string()))?;
    let shared = Arc::new(Shared::new(&settings, stats));
    let (stop_tx, stop_rx) = watch::channel(false);
    let keys = PriceKeys::new(settings.redis_prefix.clone());
    let names = Names::new(settings.bus_prefix.clone());
    let mut background = JoinSet::new();
    background.spawn(sources::redis_quotes(
        settings.redis_url.clone(),
        keys,
        shared.clone(),
        stop_rx.clone(),
    ));
    background.spawn(alerts::fired_alerts(
        nats.clone(),
        names.clone(),
        shared.clone(),
        stop_rx.clone(),
    ));
    background.spawn(sources::engine_events(
        nats,
        names,
        shared.clone(),
        stop_rx.clone(),
    ));

    let slots = Arc::new(Semaphore::new(settings.max_connections));
    let admission = admission::Admission::new(settings.admission);
    let mut accept_errors = Backoff::new(Duration::from_millis(5), Duration::from_secs(1));
    let connect_rate = connect_rate::ConnectRate::new(&settings);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors (EMFILE) or memory: retrying at once spins.
                        let pause = accept_errors.next_delay();
                        tracing::warn!(error = %e, ?pause, "accept failed; pausing");
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                };
                accept_errors.reset();
                // Admission by the peer's address, before any task or buffer: the caps on
                // handshakes and connections, then the connect rate. A rate refusal holds its
                // handshake place while it answers, so those tasks are bounded per address too.
                let handshake = match admission.admit(peer.ip()) {
                    Ok(handshake) => handshake,
                    Err(refusal) => {
                        shared.stats.count_rejected();
                        connection::refuse(tcp, refusal);
                        continue;
                    }
                };
                if let Err(wait) = connect_rate.check(peer.ip()) {
                    shared.stats.count_rejected();
                    connections.spawn(async move {
                        connect_rate::refuse(tcp, wait).await;
                        drop(handshake);
                    });
                    continue;
                }
                // Guards all: released even if the task panics. The slot under
                // `max_connections` is taken after the handshake.
                let task = connection::handle(tcp, shared.clone(), handshake, slots.clone());
                connections.spawn(task);
            }
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = done && e.is_panic() {
                    tracing::error!(error = %e, "a WebSocket connection task panicked");
                }
            }
        }
    }
    tracing::info!(
        clients = shared.registry.len(),
        "WebSocket hub shutting down"
    );
    let _ = stop_tx.send(true);
    shared.stopping.store(true, Relaxed);
    shared.registry.wake_all();
    let drain = async {
        while connections.join_next().await.is_some() {}
        while background.join_next().await.is_some() {}
    };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        tracing::warn!("some connections did not close in 5 s; dropping them");
    }
    Ok(())
}
