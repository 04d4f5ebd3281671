//! Real, fresh prices only: ticks flagged `simulated` are refused unless the configuration
//! allows them (local mode), and market opens and closes of an asset whose last applied tick
//! is too old (by the log's own time, so replay decides the same) are refused `price_stale`
//! instead of filling at an old price. The rules are in [`crate::trading`]'s doc.

use bus::{Asset, PriceTick, RejectCode, Rejection, TimestampMs};

use crate::trading::{Engine, reject};

impl Engine {
    /// Whether `tick` is refused: a simulated tick on an engine that does not allow them.
    /// A refused tick changes nothing (the engine service counts them).
    pub fn refuses(&self, tick: &PriceTick) -> bool {
        tick.simulated && !self.config.allow_simulated_prices
    }

    /// `price_stale` when the asset's quote was applied `price_stale_after_ms` or more before
    /// `now`; fine without a quote (the caller's `no_price` comes first) or with the check off.
    pub(crate) fn check_price_fresh(
        &self,
        asset: Asset,
        now: TimestampMs,
    ) -> Result<(), Rejection> {
        let limit = self.config.price_stale_after_ms;
        let Some(applied_at) = self.quote_applied_at[asset.index()] else {
            return Ok(());
        };
        let age = now.saturating_sub(applied_at);
        if limit == 0 || age < i64::try_from(limit).unwrap_or(i64::MAX) {
            return Ok(());
        }
        reject(
            RejectCode::PriceStale,
            format!(
                "the last {asset} price is {age} ms old (the limit is {limit} ms): \
                 waiting for a fresh price"
            ),
        )
    }

    /// When the asset's current quote was applied (the log time of its tick), if it has one.
    pub fn quote_applied_at(&self, asset: Asset) -> Option<TimestampMs> {
        self.quote_applied_at[asset.index()]
    }

    /// Takes the price rules (`allow_simulated_prices`, `price_stale_after_ms`) from `config`:
    /// they are the running process's settings, while the rest of the configuration comes
    /// with the state (a snapshot). Returns whether anything changed.
    pub fn set_price_rules(&mut self, config: &crate::EngineConfig) -> bool {
        let old = (
            self.config.allow_simulated_prices,
            self.config.price_stale_after_ms,
        );
        self.config.allow_simulated_prices = config.allow_simulated_prices;
        self.config.price_stale_after_ms = config.price_stale_after_ms;
        old != (config.allow_simulated_prices, config.price_stale_after_ms)
    }

    /// A snapshot written before quotes carried their applied time (formats 1 to 3): each
    /// quote counts as applied at its own tick time, the closest time the state holds.
    pub(crate) fn fill_quote_times(&mut self) {
        for (quote, at) in self.quotes.iter().zip(self.quote_applied_at.iter_mut()) {
            if at.is_none() {
                *at = quote.as_ref().map(|q| q.ts);
            }
        }
    }
}
