//! The price feed: a long-lived task that turns exchange data into the platform's prices.
//!
//! ```text
//! Binance combined stream ─┐                ┌─▶ Redis: PUBLISH quotes.<asset>, quotes.all; SET latest
//!   (or the simulated walk) ├─▶ widen spread ─┼─▶ ENGINE: conflated ticks (≤ 1 / asset / interval)
//!                          └─▶ trades ───────┴─▶ TRADES stream (read by the candle store)
//! ```
//!
//! Runs as its own process (`price-feed`) or as a task in another one ([`run`]). In
//! [`SourceMode::Auto`] it falls back to the simulated feed when Binance cannot be reached.

pub mod binance;
pub mod conflate;
pub mod health;
mod pipeline;
mod settings;
pub mod sim;
pub mod spread;

use std::time::{SystemTime, UNIX_EPOCH};

use rust_decimal::Decimal;

pub use crate::backoff::{Backoff, Rng};
pub use health::{FeedHealth, HealthReport};
pub use pipeline::{FeedError, run, run_with_health};
pub use settings::{FeedSettings, SourceMode};
pub use spread::SpreadTable;

use crate::market::Trade;
use crate::types::{Asset, TimestampMs};

/// What a source produces: an exchange's raw best bid/ask, or a trade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceEvent {
    Quote {
        asset: Asset,
        bid: Decimal,
        ask: Decimal,
        ts: TimestampMs,
        simulated: bool,
    },
    Trade(Trade),
}

pub(crate) fn now_ms() -> TimestampMs {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
