//! The platform's spread: Binance's best bid/ask widened by a per-asset markup.
//!
//! With markup `m` basis points and `d` price decimals of the asset:
//!
//! ```text
//! bid = round_down(binance_bid × (1 − m / 10 000), d)
//! ask = round_up  (binance_ask × (1 + m / 10 000), d)
//! ```
//!
//! Rounding is outward (bid towards −∞, ask towards +∞), so the platform's spread is never
//! narrower than the markup asks for. A crossed input (bid > ask) or a bid that rounds to zero
//! yields no quote.

use rust_decimal::{Decimal, RoundingStrategy};

use crate::types::{Asset, Price};

/// Markup (basis points) and price decimals per asset, indexed by [`Asset::index`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpreadTable {
    markup_bps: [Decimal; 3],
    price_decimals: [u32; 3],
}

impl SpreadTable {
    pub fn new(markup_bps: [Decimal; 3], price_decimals: [u32; 3]) -> Self {
        Self {
            markup_bps,
            price_decimals,
        }
    }

    pub fn set_markup(&mut self, asset: Asset, bps: Decimal) {
        self.markup_bps[asset.index()] = bps;
    }

    pub fn markup_bps(&self, asset: Asset) -> Decimal {
        self.markup_bps[asset.index()]
    }

    pub fn price_decimals(&self, asset: Asset) -> u32 {
        self.price_decimals[asset.index()]
    }

    /// The platform's (bid, ask) for an exchange's best bid/ask; `None` for unusable input.
    pub fn widen(&self, asset: Asset, bid: Decimal, ask: Decimal) -> Option<(Price, Price)> {
        if bid > ask {
            return None;
        }
        let m = self.markup_bps(asset) / Decimal::from(10_000);
        let d = self.price_decimals(asset);
        let bid = (bid * (Decimal::ONE - m))
            .round_dp_with_strategy(d, RoundingStrategy::ToNegativeInfinity);
        let ask = (ask * (Decimal::ONE + m))
            .round_dp_with_strategy(d, RoundingStrategy::ToPositiveInfinity);
        Some((Price::new(bid).ok()?, Price::new(ask).ok()?))
    }
}

impl Default for SpreadTable {
    /// 5 bps on each side, 2 price decimals (the engine's default asset table).
    fn default() -> Self {
        Self::new([Decimal::new(5, 0); 3], [2; 3])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    #[rstest]
    // 65000.00 × 0.9995 = 64967.5 exactly; 65000.01 × 1.0005 = 65032.510005 -> up to 65032.52
    #[case("5", 2, "65000.00", "65000.01", "64967.50", "65032.52")]
    // zero markup only rounds outward: 100.123 -> 100.12 (down), 100.125 -> 100.13 (up)
    #[case("0", 2, "100.123", "100.125", "100.12", "100.13")]
    // 10 bps, 3 decimals: 150.1234 × 0.999 = 149.9732766 -> 149.973; 150.2 × 1.001 = 150.3502
    #[case("10", 3, "150.1234", "150.2", "149.973", "150.351")]
    // exact values stay put
    #[case("0", 2, "10.50", "10.60", "10.50", "10.60")]
    fn widens_outward(
        #[case] bps: &str,
        #[case] decimals: u32,
        #[case] bid: &str,
        #[case] ask: &str,
        #[case] want_bid: &str,
        #[case] want_ask: &str,
    ) {
        let table = SpreadTable::new([d(bps); 3], [decimals; 3]);
        let (b, a) = table.widen(Asset::Btc, d(bid), d(ask)).expect("quote");
        assert_eq!(b.value(), d(want_bid));
        assert_eq!(a.value(), d(want_ask));
    }

    #[test]
    fn refuses_crossed_and_vanishing_quotes() {
        let table = SpreadTable::default();
        assert!(table.widen(Asset::Eth, d("101"), d("100")).is_none());
        assert!(table.widen(Asset::Eth, d("0.001"), d("0.002")).is_none());
    }
}
