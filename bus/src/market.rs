//! Market data on the wire: the platform quote that travels on the Redis price stream and, byte
//! for byte, to WebSocket clients; the exchange trades that feed the candles; and the Redis
//! channel and key names they use (under a configurable prefix, so tests stay isolated).

use serde::{Deserialize, Serialize};

use crate::messages::PriceTick;
use crate::types::{Asset, Price, Quantity, TimestampMs};

/// The platform's quote for an asset, already widened by the spread markup.
///
/// Serialised as `{"type":"quote","asset":"BTC","bid":"…","ask":"…","ts":…,"simulated":false}`:
/// the same JSON is published on Redis and forwarded unchanged to WebSocket clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "quote")]
pub struct MarketQuote {
    pub asset: Asset,
    pub bid: Price,
    pub ask: Price,
    /// When the quote was made, in ms since the epoch.
    pub ts: TimestampMs,
    /// True when the quote comes from the simulated random walk, not from Binance.
    pub simulated: bool,
}

impl MarketQuote {
    pub fn to_tick(&self) -> PriceTick {
        PriceTick {
            asset: self.asset,
            bid: self.bid,
            ask: self.ask,
            ts: self.ts,
            simulated: self.simulated,
        }
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialising cannot fail.
        serde_json::to_string(self).expect("a quote serialises")
    }
}

/// One exchange trade, the raw material of candles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trade {
    pub asset: Asset,
    pub price: Price,
    pub quantity: Quantity,
    /// Trade time, in ms since the epoch.
    pub ts: TimestampMs,
    /// The exchange's trade id (a counter for simulated trades).
    pub id: u64,
    pub simulated: bool,
}

/// Redis channel and key names of the price stream.
///
/// With prefix `p`: quotes for one asset on channel `p:quotes.BTC`, every quote on
/// `p:quotes.all`, and the latest quote of each asset under key `p:quote.latest.BTC`.
/// Without a prefix the leading `p:` is left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PriceKeys {
    prefix: String,
}

impl PriceKeys {
    /// `prefix` may be empty (production); otherwise letters, digits, `_` and `-`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn name(&self, base: &str) -> String {
        if self.prefix.is_empty() {
            base.to_string()
        } else {
            format!("{}:{base}", self.prefix)
        }
    }

    pub fn asset_channel(&self, asset: Asset) -> String {
        self.name(&format!("quotes.{}", asset.symbol()))
    }

    pub fn all_channel(&self) -> String {
        self.name("quotes.all")
    }

    pub fn latest_key(&self, asset: Asset) -> String {
        self.name(&format!("quote.latest.{}", asset.symbol()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn quote_json_is_tagged_and_round_trips() {
        let quote = MarketQuote {
            asset: Asset::Btc,
            bid: Price::from_str("64999.50").expect("price"),
            ask: Price::from_str("65000.75").expect("price"),
            ts: 1_700_000_000_123,
            simulated: true,
        };
        let json = quote.to_json();
        assert_eq!(
            json,
            r#"{"type":"quote","asset":"BTC","bid":"64999.50","ask":"65000.75","ts":1700000000123,"simulated":true}"#
        );
        let back: MarketQuote = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, quote);
        assert_eq!(back.to_tick().bid, quote.bid);
        assert!(
            back.to_tick().simulated,
            "the flag travels into the engine tick"
        );
    }

    #[test]
    fn price_keys_with_and_without_prefix() {
        let bare = PriceKeys::default();
        assert_eq!(bare.asset_channel(Asset::Eth), "quotes.ETH");
        assert_eq!(bare.all_channel(), "quotes.all");
        let t = PriceKeys::new("t9");
        assert_eq!(t.asset_channel(Asset::Sol), "t9:quotes.SOL");
        assert_eq!(t.all_channel(), "t9:quotes.all");
        assert_eq!(t.latest_key(Asset::Btc), "t9:quote.latest.BTC");
    }
}
