//! The feed's health, shared between its tasks and whoever reports it (the `price-feed`
//! binary's HTTP endpoint, the local runner, the Redis health key).
//!
//! The feed is *stale* when its source has been silent longer than the stale threshold.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use serde::Serialize;

use super::now_ms;
use crate::types::Asset;

const SOURCE_BINANCE: u8 = 1;
const SOURCE_SIMULATED: u8 = 2;

/// Cheap to clone; every clone sees the same counters.
#[derive(Debug, Clone, Default)]
pub struct FeedHealth(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    source: AtomicU8,
    connected: AtomicBool,
    stale: AtomicBool,
    last_message_ms: AtomicI64,
    reconnects: AtomicU64,
    quotes_published: AtomicU64,
    /// Per asset (`Asset::index`): quotes from the source, and quotes published to Redis.
    received_by_asset: [AtomicU64; 3],
    published_by_asset: [AtomicU64; 3],
    ticks_published: AtomicU64,
    trades_published: AtomicU64,
    dropped: AtomicU64,
}

/// A point-in-time view, serialised as the health endpoint's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// `"binance"`, `"simulated"` or `"starting"`.
    pub source: &'static str,
    pub simulated: bool,
    pub connected: bool,
    pub stale: bool,
    pub last_message_age_ms: Option<i64>,
    pub reconnects: u64,
    pub quotes_published: u64,
    pub ticks_published: u64,
    pub trades_published: u64,
    /// Quotes or trades dropped because a downstream queue was full.
    pub dropped: u64,
}

impl HealthReport {
    pub fn healthy(&self) -> bool {
        self.connected && !self.stale
    }
}

impl FeedHealth {
    pub fn set_binance(&self) {
        self.0.source.store(SOURCE_BINANCE, Relaxed);
    }
    pub fn set_simulated(&self) {
        self.0.source.store(SOURCE_SIMULATED, Relaxed);
        self.set_connected(true);
    }
    pub fn set_connected(&self, connected: bool) {
        self.0.connected.store(connected, Relaxed);
    }
    pub fn mark_fresh(&self) {
        self.0.last_message_ms.store(now_ms(), Relaxed);
        if self.0.stale.swap(false, Relaxed) {
            tracing::info!("feed is fresh again");
        }
    }
    pub fn mark_stale(&self) {
        self.0.stale.store(true, Relaxed);
    }
    pub fn is_stale(&self) -> bool {
        self.0.stale.load(Relaxed)
    }
    pub fn count_reconnect(&self) {
        self.0.reconnects.fetch_add(1, Relaxed);
    }
    /// A quote arrived from the source (before spread and de-duplication).
    pub fn count_received(&self, asset: Asset) {
        self.0.received_by_asset[asset.index()].fetch_add(1, Relaxed);
    }
    /// A quote reached Redis.
    pub fn count_quote(&self, asset: Asset) {
        self.0.quotes_published.fetch_add(1, Relaxed);
        self.0.published_by_asset[asset.index()].fetch_add(1, Relaxed);
    }
    pub fn count_tick(&self) {
        self.0.ticks_published.fetch_add(1, Relaxed);
    }
    pub fn count_trade(&self) {
        self.0.trades_published.fetch_add(1, Relaxed);
    }
    pub fn count_dropped(&self) {
        self.0.dropped.fetch_add(1, Relaxed);
    }

    pub fn report(&self) -> HealthReport {
        let i = &self.0;
        let source = match i.source.load(Relaxed) {
            SOURCE_BINANCE => "binance",
            SOURCE_SIMULATED => "simulated",
            _ => "starting",
        };
        let last = i.last_message_ms.load(Relaxed);
        HealthReport {
            source,
            simulated: source == "simulated",
            connected: i.connected.load(Relaxed),
            stale: i.stale.load(Relaxed),
            last_message_age_ms: (last > 0).then(|| now_ms() - last),
            reconnects: i.reconnects.load(Relaxed),
            quotes_published: i.quotes_published.load(Relaxed),
            ticks_published: i.ticks_published.load(Relaxed),
            trades_published: i.trades_published.load(Relaxed),
            dropped: i.dropped.load(Relaxed),
        }
    }
}

impl FeedHealth {
    /// Exports these counters as `feed_*` metrics, copied at every scrape (the feed's paths
    /// keep counting into atomics): quotes received/published per asset, ticks, trades,
    /// dropped, reconnects, and the `feed_stale`, `feed_connected`, `feed_simulated` flags.
    pub fn export_metrics(&self) {
        crate::process::install_metrics();
        let weak: Weak<Inner> = Arc::downgrade(&self.0);
        let per_asset =
            |name: &'static str| Asset::ALL.map(|a| metrics::counter!(name, "asset" => a.symbol()));
        let received = per_asset("feed_quotes_received_total");
        let published = per_asset("feed_quotes_published_total");
        let ticks = metrics::counter!("feed_ticks_published_total");
        let trades = metrics::counter!("feed_trades_published_total");
        let dropped = metrics::counter!("feed_dropped_total");
        let reconnects = metrics::counter!("feed_reconnects_total");
        let stale = metrics::gauge!("feed_stale");
        let connected = metrics::gauge!("feed_connected");
        let simulated = metrics::gauge!("feed_simulated");
        let age = metrics::gauge!("feed_last_message_age_seconds");
        crate::process::on_scrape(move || {
            let Some(inner) = weak.upgrade() else { return };
            let report = FeedHealth(inner.clone()).report();
            for i in 0..Asset::ALL.len() {
                received[i].absolute(inner.received_by_asset[i].load(Relaxed));
                published[i].absolute(inner.published_by_asset[i].load(Relaxed));
            }
            ticks.absolute(report.ticks_published);
            trades.absolute(report.trades_published);
            dropped.absolute(report.dropped);
            reconnects.absolute(report.reconnects);
            let flag = |on: bool| if on { 1.0 } else { 0.0 };
            stale.set(flag(report.stale));
            connected.set(flag(report.connected));
            simulated.set(flag(report.simulated));
            if let Some(ms) = report.last_message_age_ms {
                age.set(ms as f64 / 1000.0);
            }
        });
    }

    /// The feed's `/readyz`: ready while its source is connected and quotes are fresh.
    pub fn readiness(&self) -> crate::readiness::Readiness {
        use crate::readiness::{Check, Readiness};
        let r = self.report();
        let source = if r.connected {
            Check::ok("source")
        } else {
            Check::failed("source", format!("{} is not connected", r.source))
        };
        let quotes = if r.stale {
            Check::failed(
                "quotes",
                "no quote from the source within the stale threshold",
            )
        } else {
            Check::ok("quotes")
        };
        Readiness::of(vec![source, quotes])
    }
}

/// A minimal HTTP health endpoint: any request gets the [`HealthReport`] as JSON, with 200
/// when connected and fresh, 503 otherwise. Runs until the listener fails.
pub async fn serve_http(listener: tokio::net::TcpListener, health: FeedHealth) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        let report = health.report();
        tokio::spawn(async move {
            let mut request = [0u8; 1024];
            let read =
                tokio::time::timeout(std::time::Duration::from_secs(2), socket.read(&mut request));
            if !matches!(read.await, Ok(Ok(_))) {
                return;
            }
            let body = serde_json::to_string(&report).unwrap_or_default();
            let status = if report.healthy() {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}
