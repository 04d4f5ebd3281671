//! The price feed's settings, read from the environment (through [`crate::settings`]) with
//! defaults that work locally.
//!
//! Outside local mode (`APP_ENV` unset or `production`) the feed trades on real prices only:
//! `PRICE_SOURCE` defaults to `binance`, and `auto` and `simulated` (the random walk) stop the
//! start with an error naming the variable. In local mode (`APP_ENV=local`) it defaults to
//! `auto`: Binance, falling back to the labelled simulation on machines that cannot reach it.

use std::str::FromStr;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::spread::SpreadTable;
use crate::settings::{Env, Mode, SettingsError};
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
    /// An unchanged quote is sent again (to Redis and the engine) once the last one sent is
    /// this old, so a quiet market is never mistaken for a stale price (`FEED_REFRESH_MS`).
    pub refresh_interval: Duration,
    pub sim_start_prices: [Decimal; 3],
    /// Age limit of the `TRADES` stream.
    pub trades_max_age: Duration,
    /// How long a tick publish waits for its JetStream ack.
    pub engine_timeout: Duration,
    /// Where the `price-feed` process serves its health (`FEED_HEALTH_ADDR`).
    pub health_addr: String,
}

impl Default for FeedSettings {
    fn default() -> Self {
        Self {
            // The production default; local mode reads `auto` (see `from_vars`).
            source: SourceMode::Binance,
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
            refresh_interval: Duration::from_secs(1),
            sim_start_prices: super::sim::default_start_prices(),
            trades_max_age: Duration::from_secs(24 * 3600),
            engine_timeout: Duration::from_secs(5),
            health_addr: "127.0.0.1:7071".into(),
        }
    }
}

/// The feed's variables (unset ones keep the default); per-asset ones go through
/// [`Env::parse`].
#[derive(Deserialize)]
struct Vars {
    price_source: Option<String>,
    binance_ws_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    nats_url: Option<String>,
    tick_interval_ms: Option<u64>,
    feed_stale_after_ms: Option<u64>,
    feed_fallback_after: Option<u32>,
    sim_interval_ms: Option<u64>,
    feed_health_addr: Option<String>,
    feed_refresh_ms: Option<u64>,
}

impl FeedSettings {
    /// Reads `PRICE_SOURCE`, `BINANCE_WS_URL`, `MARKUP_BPS` (all assets) and
    /// `MARKUP_BPS_<ASSET>`, `PRICE_DECIMALS_<ASSET>`, `REDIS_URL`, `REDIS_PREFIX`, `NATS_URL`,
    /// `ENGINE_PREFIX`, `TICK_INTERVAL_MS`, `FEED_STALE_AFTER_MS`, `FEED_FALLBACK_AFTER`,
    /// `SIM_INTERVAL_MS`, `FEED_HEALTH_ADDR`, `FEED_REFRESH_MS`. Unset values keep the default; a
    /// bad one is an error naming it. `PRICE_SOURCE` depends on `APP_ENV` (see the module doc).
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::from_process())
    }

    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        let d = Self::default();
        let v: Vars = env.read()?;
        let source = source_from(env.mode()?, v.price_source.as_deref())?;
        let millis = |v: Option<u64>, default| v.map_or(default, Duration::from_millis);
        Ok(Self {
            source,
            binance_url: v.binance_ws_url.unwrap_or(d.binance_url),
            spreads: spreads_from(env, &d.spreads)?,
            redis_url: v.redis_url.unwrap_or(d.redis_url),
            redis_prefix: v.redis_prefix.unwrap_or(d.redis_prefix),
            nats_url: v.nats_url.unwrap_or(d.nats_url),
            bus_prefix: env.bus_prefix()?,
            tick_interval: millis(v.tick_interval_ms, d.tick_interval),
            stale_after: millis(v.feed_stale_after_ms, d.stale_after),
            fallback_after_failures: v.feed_fallback_after.unwrap_or(d.fallback_after_failures),
            sim_interval: millis(v.sim_interval_ms, d.sim_interval),
            health_addr: v.feed_health_addr.unwrap_or(d.health_addr),
            refresh_interval: millis(v.feed_refresh_ms, d.refresh_interval),
            ..d
        })
    }
}

/// `PRICE_SOURCE` in `mode`: unset is `auto` in local mode and `binance` elsewhere, where
/// `auto` and `simulated` are refused (a platform never trades on simulated prices).
fn source_from(mode: Mode, value: Option<&str>) -> Result<SourceMode, SettingsError> {
    const EXPECTED: &str = "binance, simulated or auto";
    let source = match value {
        None if mode == Mode::Local => SourceMode::Auto,
        None => SourceMode::Binance,
        Some(s) => s
            .parse()
            .map_err(|_| SettingsError::invalid("PRICE_SOURCE", s, EXPECTED))?,
    };
    if mode == Mode::Production && source != SourceMode::Binance {
        return Err(SettingsError::new(format!(
            "PRICE_SOURCE={:?} is refused outside local mode: only binance gives real prices \
             (the simulated walk is for APP_ENV=local)",
            value.unwrap_or_default()
        )));
    }
    Ok(source)
}

/// `MARKUP_BPS` (every asset), `MARKUP_BPS_<ASSET>` (one asset, wins) and
/// `PRICE_DECIMALS_<ASSET>` over the defaults.
fn spreads_from(env: &Env, defaults: &SpreadTable) -> Result<SpreadTable, SettingsError> {
    const BPS: &str = "a non-negative number of basis points";
    let all: Option<Decimal> = env.parse("MARKUP_BPS", BPS)?;
    let mut markups = [Decimal::ZERO; 3];
    let mut decimals = [0u32; 3];
    for asset in Asset::ALL {
        let key = format!("MARKUP_BPS_{}", asset.symbol());
        let markup = env.parse(&key, BPS)?.or(all);
        let markup = markup.unwrap_or(defaults.markup_bps(asset));
        if markup.is_sign_negative() {
            let name = if env.get(&key).is_some() {
                key.as_str()
            } else {
                "MARKUP_BPS"
            };
            return Err(SettingsError::invalid(name, &markup.to_string(), BPS));
        }
        markups[asset.index()] = markup;
        let key = format!("PRICE_DECIMALS_{}", asset.symbol());
        decimals[asset.index()] = env
            .parse(&key, "a whole number of decimals")?
            .unwrap_or(defaults.price_decimals(asset));
    }
    Ok(SpreadTable::new(markups, decimals))
}
