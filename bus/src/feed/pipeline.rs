//! The feed's supervisor: connects to Redis and NATS, starts the source (Binance, the
//! simulation, or Binance with fallback), the quote processor, the tick conflaters and the
//! trade publisher, and drains them in order on shutdown (source first; every later stage ends
//! when its input channel closes).

use std::future::Future;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::binance::{self, BinanceConfig, BinanceEnd};
use super::conflate::{self, TickSlots};
use super::health::FeedHealth;
use super::settings::{FeedSettings, SourceMode};
use super::spread::SpreadTable;
use super::{Backoff, SourceEvent, now_ms, sim};
use crate::market::{MarketQuote, PriceKeys, Trade};
use crate::nats::{EngineClient, StreamSettings, ensure_streams};
use crate::subjects::Names;
use crate::{prices, trades};

/// Bound of the source -> processor queue.
const SOURCE_QUEUE: usize = 8192;
/// Bound of the processor -> trade publisher queue; a full queue drops (and counts) trades.
const TRADE_QUEUE: usize = 8192;

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("nats: {0}")]
    Nats(String),
    #[error("a feed task failed: {0}")]
    Task(String),
}

/// Runs the feed until `shutdown` completes.
pub async fn run(
    settings: FeedSettings,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), FeedError> {
    run_with_health(settings, FeedHealth::default(), shutdown).await
}

/// [`run`], reporting into `health` (which the caller can read while it runs).
pub async fn run_with_health(
    settings: FeedSettings,
    health: FeedHealth,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), FeedError> {
    let redis = redis::Client::open(settings.redis_url.as_str())?
        .get_connection_manager()
        .await?;
    let nats = async_nats::connect(&settings.nats_url)
        .await
        .map_err(|e| FeedError::Nats(e.to_string()))?;
    let names = Names::new(settings.bus_prefix.clone());
    let js = async_nats::jetstream::new(nats.clone());
    // The feed may start before the engine: make sure its ticks have a stream to land in.
    ensure_streams(&js, &names, &StreamSettings::default())
        .await
        .map_err(|e| FeedError::Nats(e.to_string()))?;
    trades::ensure_trades_stream(&js, &names, settings.trades_max_age)
        .await
        .map_err(|e| FeedError::Nats(e.to_string()))?;
    let engine = EngineClient::new(nats, names.clone(), settings.engine_timeout);

    let (stop_tx, stop_rx) = watch::channel(false);
    let (source_tx, source_rx) = mpsc::channel(SOURCE_QUEUE);
    let (trade_tx, trade_rx) = mpsc::channel(TRADE_QUEUE);
    let (slots, tick_tasks) = conflate::spawn(engine, settings.tick_interval, health.clone());
    let source = tokio::spawn(run_source(
        settings.clone(),
        source_tx,
        health.clone(),
        stop_rx,
    ));
    let processor = Processor {
        spreads: settings.spreads.clone(),
        keys: PriceKeys::new(settings.redis_prefix.clone()),
        redis,
        slots,
        trades: trade_tx,
        health: health.clone(),
        last: [None, None, None],
        refresh_ms: i64::try_from(settings.refresh_interval.as_millis()).unwrap_or(i64::MAX),
        redis_failing: false,
    };
    let processor = tokio::spawn(processor.run(source_rx));
    let trade_task = tokio::spawn(publish_trades(js, names, trade_rx, health));

    tokio::pin!(shutdown);
    tokio::select! {
        _ = &mut shutdown => tracing::info!("price feed shutting down"),
        r = processor_watch(&processor) => tracing::error!("processor ended early: {r}"),
    }
    let _ = stop_tx.send(true);
    let mut tasks: Vec<JoinHandle<()>> = vec![source, processor, trade_task];
    tasks.extend(tick_tasks);
    for task in tasks {
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(FeedError::Task(e.to_string())),
            Err(_) => return Err(FeedError::Task("a task did not stop in 5 s".into())),
        }
    }
    Ok(())
}

/// Resolves (with a reason) only if the processor task ends by itself.
async fn processor_watch(task: &JoinHandle<()>) -> &'static str {
    loop {
        if task.is_finished() {
            return "its input closed";
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run_source(
    s: FeedSettings,
    tx: mpsc::Sender<SourceEvent>,
    health: FeedHealth,
    stop: watch::Receiver<bool>,
) {
    if s.source != SourceMode::Simulated {
        health.set_binance();
        let config = BinanceConfig {
            url: binance::combined_stream_url(&s.binance_url),
            stale_after: s.stale_after,
            connect_timeout: s.connect_timeout,
            backoff: Backoff::new(s.backoff_base, s.backoff_max),
            give_up_after: (s.source == SourceMode::Auto).then_some(s.fallback_after_failures),
        };
        match binance::run(config, tx.clone(), health.clone(), stop.clone()).await {
            BinanceEnd::Stopped => return,
            BinanceEnd::NeverConnected => {
                tracing::warn!("Binance is unreachable: falling back to the SIMULATED feed");
            }
        }
    }
    sim::run(s.sim_start_prices, s.sim_interval, tx, health, stop).await;
}

/// A published quote: bid, ask and the source's time.
type Sent = (crate::Price, crate::Price, crate::TimestampMs);

/// Whether `quote` repeats the `last` one published (same bid and ask) less than `refresh_ms`
/// after it: such a quote is not published. An unchanged price is published again once that
/// old, so a quiet market never looks stale to the engine and the page, which refuse or mark
/// prices that stop coming.
fn is_repeat(last: Option<Sent>, quote: Sent, refresh_ms: i64) -> bool {
    last.is_some_and(|(bid, ask, at)| {
        (bid, ask) == (quote.0, quote.1) && quote.2.saturating_sub(at) < refresh_ms
    })
}

struct Processor {
    spreads: SpreadTable,
    keys: PriceKeys,
    redis: ConnectionManager,
    slots: TickSlots,
    trades: mpsc::Sender<Trade>,
    health: FeedHealth,
    /// The last published quote per asset: see [`is_repeat`].
    last: [Option<Sent>; 3],
    refresh_ms: i64,
    redis_failing: bool,
}

impl Processor {
    async fn run(mut self, mut rx: mpsc::Receiver<SourceEvent>) {
        while let Some(event) = rx.recv().await {
            match event {
                SourceEvent::Quote {
                    asset,
                    bid,
                    ask,
                    ts,
                    simulated,
                } => {
                    self.health.count_received(asset);
                    let Some((bid, ask)) = self.spreads.widen(asset, bid, ask) else {
                        continue;
                    };
                    if is_repeat(self.last[asset.index()], (bid, ask, ts), self.refresh_ms) {
                        continue;
                    }
                    self.last[asset.index()] = Some((bid, ask, ts));
                    let quote = MarketQuote {
                        asset,
                        bid,
                        ask,
                        ts,
                        simulated,
                    };
                    self.slots.offer(quote.to_tick());
                    self.publish(&quote).await;
                }
                SourceEvent::Trade(trade) => {
                    if self.trades.try_send(trade).is_err() {
                        self.health.count_dropped();
                    }
                }
            }
        }
    }

    async fn publish(&mut self, quote: &MarketQuote) {
        match prices::publish_quote(&mut self.redis, &self.keys, quote).await {
            Ok(()) => {
                self.health.count_quote(quote.asset);
                if self.redis_failing {
                    tracing::info!("quotes reach Redis again");
                    self.redis_failing = false;
                }
            }
            Err(e) => {
                if !self.redis_failing {
                    tracing::warn!(error = %e, "cannot publish quotes to Redis");
                    self.redis_failing = true;
                }
                self.health.count_dropped();
            }
        }
    }
}

async fn publish_trades(
    js: async_nats::jetstream::Context,
    names: Names,
    mut rx: mpsc::Receiver<Trade>,
    health: FeedHealth,
) {
    let mut failing = false;
    while let Some(trade) = rx.recv().await {
        let published = tokio::time::timeout(
            Duration::from_secs(5),
            trades::publish_trade(&js, &names, &trade, now_ms()),
        )
        .await;
        match published {
            Ok(Ok(())) => {
                health.count_trade();
                failing = false;
            }
            Ok(Err(e)) if !failing => {
                tracing::warn!(error = %e, "cannot log trades into TRADES");
                failing = true;
            }
            Err(_) if !failing => {
                tracing::warn!("logging a trade timed out");
                failing = true;
            }
            _ => health.count_dropped(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unchanged_quote_is_published_again_once_the_refresh_interval_passed() {
        let p = |v: i64| crate::Price::new(v.into()).expect("price");
        let last = Some((p(100), p(101), 5_000));
        assert!(!is_repeat(None, (p(100), p(101), 5_000), 1_000));
        assert!(is_repeat(last, (p(100), p(101), 5_999), 1_000));
        assert!(!is_repeat(last, (p(100), p(101), 6_000), 1_000));
        assert!(!is_repeat(last, (p(100), p(102), 5_001), 1_000));
        assert!(!is_repeat(last, (p(99), p(101), 5_001), 1_000));
    }
}
