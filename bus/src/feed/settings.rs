//! The price feed's settings, read from the environment with defaults that work locally.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;

use super::spread::SpreadTable;
use crate::types::Asset;

/// Where quotes come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceMode {
    /// Binance only; reconnects forever.
    Binance,
    /// The random walk only.
    Simulated,
    /// Binance, falling back to the random walk when no connection ever succeeds.
    Auto,
}

impl FromStr for SourceMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "binance" => Ok(Self::Binance),
            "simulated" => Ok(Self::Simulated),
            "auto" => Ok(Self::Auto),
            _ => Err(format!(
                "PRICE_SOURCE {s:?}: expected binance, simulated or auto"
            )),
        }
    }
}

#[derive(Debug, Clone)]
pub struct FeedSettings {
    pub source: SourceMode,
    /// Binance's base WebSocket URL; the combined-stream path is appended.
    pub binance_url: String,
    pub spreads: SpreadTable,
    pub redis_url: String,
    /// Prefix of the Redis channels and keys (see [`crate::PriceKeys`]).
    pub redis_prefix: String,
    pub nats_url: String,
    /// Isolation prefix of NATS streams and subjects (see [`crate::Names`]).
    pub bus_prefix: String,
    /// At most one tick per asset into `ENGINE` per this interval.
    pub tick_interval: Duration,
    /// Silence after which the feed is reported stale (and, at 3×, reconnected).
    pub stale_after: Duration,
    /// In auto mode: failed connection attempts before falling back to the simulation.
    pub fallback_after_failures: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub connect_timeout: Duration,
    /// Quote interval of the simulated feed (per asset).
    pub sim_interval: Duration,
    pub sim_start_prices: [Decimal; 3],
    /// Age limit of the `TRADES` stream.
    pub trades_max_age: Duration,
    /// How long a tick publish waits for its JetStream ack.
    pub engine_timeout: Duration,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            source: SourceMode::Auto,
            binance_url: "wss://stream.binance.com:9443".into(),
            spreads: SpreadTable::default(),
            redis_url: "redis://127.0.0.1:6379".into(),
            redis_prefix: String::new(),
            nats_url: "nats://127.0.0.1:4222".into(),
            bus_prefix: String::new(),
            tick_interval: Duration::from_millis(100),
            stale_after: Duration::from_secs(10),
            fallback_after_failures: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            sim_interval: Duration::from_millis(100),
            sim_start_prices: super::sim::default_start_prices(),
            trades_max_age: Duration::from_secs(24 * 3600),
            engine_timeout: Duration::from_secs(5),
        }
    }
}

impl FeedSettings {
    /// Reads `PRICE_SOURCE`, `BINANCE_WS_URL`, `MARKUP_BPS` (all assets) and
    /// `MARKUP_BPS_<ASSET>`, `PRICE_DECIMALS_<ASSET>`, `REDIS_URL`, `REDIS_PREFIX`, `NATS_URL`,
    /// `ENGINE_PREFIX`, `TICK_INTERVAL_MS`, `FEED_STALE_AFTER_MS`, `FEED_FALLBACK_AFTER`,
    /// `SIM_INTERVAL_MS`. Unset values keep the default; unreadable ones are an error.
    pub fn from_env() -> Result<Self, String> {
        let mut s = Self::default();
        let var = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
        let millis = |key: &str| -> Result<Option<Duration>, String> {
            var(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map(Duration::from_millis)
                        .map_err(|_| bad(key, &v))
                })
                .transpose()
        };
        if let Some(v) = var("PRICE_SOURCE") {
            s.source = v.parse()?;
        }
        s.binance_url = var("BINANCE_WS_URL").unwrap_or(s.binance_url);
        s.redis_url = var("REDIS_URL").unwrap_or(s.redis_url);
        s.redis_prefix = var("REDIS_PREFIX").unwrap_or(s.redis_prefix);
        s.nats_url = var("NATS_URL").unwrap_or(s.nats_url);
        s.bus_prefix = var("ENGINE_PREFIX").unwrap_or(s.bus_prefix);
        s.tick_interval = millis("TICK_INTERVAL_MS")?.unwrap_or(s.tick_interval);
        s.stale_after = millis("FEED_STALE_AFTER_MS")?.unwrap_or(s.stale_after);
        s.sim_interval = millis("SIM_INTERVAL_MS")?.unwrap_or(s.sim_interval);
        if let Some(v) = var("FEED_FALLBACK_AFTER") {
            s.fallback_after_failures = v.parse().map_err(|_| bad("FEED_FALLBACK_AFTER", &v))?;
        }
        let all_markup = var("MARKUP_BPS");
        let mut markups = [Decimal::ZERO; 3];
        let mut decimals = [0u32; 3];
        for asset in Asset::ALL {
            let key = format!("MARKUP_BPS_{}", asset.symbol());
            markups[asset.index()] = match var(&key).or(all_markup.clone()) {
                Some(v) => Decimal::from_str(&v).map_err(|_| bad(&key, &v))?,
                None => s.spreads.markup_bps(asset),
            };
            let key = format!("PRICE_DECIMALS_{}", asset.symbol());
            decimals[asset.index()] = match var(&key) {
                Some(v) => v.parse().map_err(|_| bad(&key, &v))?,
                None => s.spreads.price_decimals(asset),
            };
        }
        if markups.iter().any(|m| m.is_sign_negative()) {
            return Err("a markup must not be negative".into());
        }
        s.spreads = SpreadTable::new(markups, decimals);
        Ok(s)
    }
}

fn bad(key: &str, value: &str) -> String {
    format!("{key}={value:?} is not valid")
}
