//! The engine's configuration: the asset table, the demo deposit, the idempotency window and
//! the price rules (simulated ticks, stale prices) and the per-account limits. It is part of
//! the state (and of snapshots); fields added later read their defaults from older snapshots.

use bus::Asset;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Trading limits of one asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetSpec {
    /// Prices (and SL/TP levels) have at most this many decimals.
    pub price_decimals: u32,
    /// Quantities are whole multiples of this.
    pub quantity_step: Decimal,
    pub min_quantity: Decimal,
    pub max_quantity: Decimal,
    pub max_leverage: u32,
}

/// One [`AssetSpec`] per [`Asset`], indexed densely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssetTable {
    specs: [AssetSpec; 3],
}

impl AssetTable {
    pub fn new(btc: AssetSpec, eth: AssetSpec, sol: AssetSpec) -> Self {
        Self {
            specs: [btc, eth, sol],
        }
    }

    pub fn get(&self, asset: Asset) -> &AssetSpec {
        &self.specs[asset.index()]
    }

    pub fn get_mut(&mut self, asset: Asset) -> &mut AssetSpec {
        &mut self.specs[asset.index()]
    }
}

impl Default for AssetTable {
    fn default() -> Self {
        let spec = |step: Decimal, max: i64| AssetSpec {
            price_decimals: 2,
            quantity_step: step,
            min_quantity: step,
            max_quantity: Decimal::from(max),
            max_leverage: 100,
        };
        Self::new(
            spec(Decimal::new(1, 4), 100),    // BTC: 0.0001 .. 100
            spec(Decimal::new(1, 3), 1_000),  // ETH: 0.001 .. 1,000
            spec(Decimal::new(1, 2), 50_000), // SOL: 0.01 .. 50,000
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineConfig {
    pub assets: AssetTable,
    /// The demo deposit of a new account, in USD.
    pub initial_balance: Decimal,
    /// How many command ids (with their replies) the engine remembers per user: past it, the
    /// user's oldest is forgotten. (Before snapshot format 4 this bounded all users together.)
    pub idempotency_window: usize,
    /// Whether ticks flagged `simulated` are applied. Off by default (and in snapshots written
    /// before the flag): a refused tick changes nothing. The engine service turns it on in
    /// local mode (`APP_ENV=local`) unless `ENGINE_ALLOW_SIMULATED` says otherwise.
    #[serde(default)]
    pub allow_simulated_prices: bool,
    /// Market opens and closes of an asset are refused `price_stale` once its last applied
    /// tick is this many ms of log time old (`now - applied_at >= this`); 0 turns the check
    /// off. Default 30,000.
    #[serde(default = "default_price_stale_after_ms")]
    pub price_stale_after_ms: u64,
    /// How long (log time, ms) a command id is remembered at least (default 24 h).
    #[serde(default = "default_ttl")]
    pub idempotency_ttl_ms: i64,
    /// Most pending orders per account (default 200): past it `too_many_orders`.
    #[serde(default = "default_max_orders")]
    pub max_pending_orders: usize,
    /// Most open positions per account (default 500): past it `too_many_positions` (and an
    /// order that fills then is cancelled `too_many_positions`).
    #[serde(default = "default_max_positions")]
    pub max_open_positions: usize,
    /// Most items in one page of a listing query (default 100).
    #[serde(default = "default_page_size")]
    pub page_size: usize,
}

/// 30 s: Binance's book ticker moves many times a second, and the feed re-sends an unchanged
/// quote every second, so only a stopped feed goes this long without a tick.
pub const DEFAULT_PRICE_STALE_AFTER_MS: u64 = 30_000;

fn default_price_stale_after_ms() -> u64 {
    DEFAULT_PRICE_STALE_AFTER_MS
}

fn default_ttl() -> i64 {
    24 * 3_600_000
}

fn default_max_orders() -> usize {
    200
}

fn default_max_positions() -> usize {
    500
}

fn default_page_size() -> usize {
    100
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            assets: AssetTable::default(),
            initial_balance: Decimal::new(1_000_000, 2), // 10,000.00
            idempotency_window: 10_000,
            allow_simulated_prices: false,
            price_stale_after_ms: DEFAULT_PRICE_STALE_AFTER_MS,
            idempotency_ttl_ms: default_ttl(),
            max_pending_orders: default_max_orders(),
            max_open_positions: default_max_positions(),
            page_size: default_page_size(),
        }
    }
}
