//! The feed's health, shared between its tasks and whoever reports it (the `price-feed`
//! binary's HTTP endpoint, the local runner, the Redis health key).
//!
//! The feed is *stale* when its source has been silent longer than the stale threshold.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering::Relaxed};

use serde::Serialize;

use super::now_ms;

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
    pub fn count_quote(&self) {
        self.0.quotes_published.fetch_add(1, Relaxed);
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
