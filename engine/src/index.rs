//! Ordered trigger indexes, so a price tick costs O(log n + triggered), not a scan.
//!
//! Per asset and side, three ordered sets of `(level, position id)`: liquidation, stop-loss and
//! take-profit levels. A tick asks each set only for the range of levels the new price crossed.
//! The indexes are derived from the open positions and rebuilt on restore; they are never
//! serialised.
//!
//! Levels are keyed as fixed-point integers (units of 1e-8, floored) because comparing
//! `Decimal`s dominated the cost of a tick. Flooring both the levels and the queried price
//! keeps every truly crossed level in the answer (`L >= p` implies `floor(L) >= floor(p)`, and
//! `L <= p` implies `floor(L) <= floor(p)`); the caller re-checks each candidate exactly, so a
//! level with more than 8 decimals can at worst be a candidate that is then not triggered.
//!
//! A liquidation entry is keyed by the position's exact level (`open ∓ margin / quantity`,
//! not the rounded price shown), floored to 1e-8 in integers: `open * 10^8 ∓ margin * 10^8 /
//! quantity` on the mantissas, the quotient rounded towards the open price, which is exactly
//! `floor(level * 10^8)` (no `Decimal` division, which cost more than the rest of an insert).
//! Where the mantissas do not fit (or the open price has more than 8 decimals) the key is the
//! `Decimal` level widened by one key unit towards the open price: that division is rounded at
//! 28 significant digits, far below 1e-8. Either way every position that
//! [`crate::math::is_liquidated`] (the exact re-check, by multiplication) liquidates is among
//! the candidates.

use bus::{Asset, Position, PositionId, Price, Side};
use rust_decimal::Decimal;

use crate::key_set::KeySet;
use crate::math;

type Levels = KeySet<PositionId>;

/// Decimals kept in an index key.
const KEY_DECIMALS: u32 = 8;

/// Powers of ten up to a `Decimal`'s largest scale (28).
const POW10: [i128; 29] = {
    let mut table = [1i128; 29];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// The powers of ten a key multiplies by, as `i64`.
const POW10_I64: [i64; KEY_DECIMALS as usize + 1] = {
    let mut table = [1i64; KEY_DECIMALS as usize + 1];
    let mut i = 1;
    while i < table.len() {
        table[i] = table[i - 1] * 10;
        i += 1;
    }
    table
};

/// `floor(value * 10^8)`, saturating at the bounds of `i64`.
pub(crate) fn key(value: Decimal) -> i64 {
    let mantissa = value.mantissa();
    let scale = value.scale();
    // Every tick keys its bid and ask: a price with at most 8 decimals whose key fits takes
    // one 64-bit multiply instead of 128-bit arithmetic.
    if scale <= KEY_DECIMALS
        && let Ok(small) = i64::try_from(mantissa)
        && let Some(k) = small.checked_mul(POW10_I64[(KEY_DECIMALS - scale) as usize])
    {
        return k;
    }
    let scaled = if scale <= KEY_DECIMALS {
        mantissa.saturating_mul(POW10[(KEY_DECIMALS - scale) as usize])
    } else {
        mantissa.div_euclid(POW10[(scale - KEY_DECIMALS) as usize])
    };
    i64::try_from(scaled).unwrap_or(if scaled < 0 { i64::MIN } else { i64::MAX })
}

/// `floor(level * 10^8)` of a position's exact liquidation level, in integers; none when the
/// open price has more than 8 decimals or a product does not fit 128 bits.
fn exact_liquidation_key(
    side: Side,
    open: Decimal,
    margin: Decimal,
    quantity: Decimal,
) -> Option<i64> {
    let open_units = open
        .mantissa()
        .checked_mul(*POW10.get(KEY_DECIMALS.checked_sub(open.scale())? as usize)?)?;
    // margin * 10^8 / quantity = (m * 10^(8 + sq)) / (q * 10^sm) on the mantissas.
    let numerator = margin
        .mantissa()
        .checked_mul(*POW10.get((KEY_DECIMALS + quantity.scale()) as usize)?)?;
    let denominator = quantity
        .mantissa()
        .checked_mul(*POW10.get(margin.scale() as usize)?)?;
    if denominator <= 0 {
        return None;
    }
    let units = match side {
        // floor(open - x) = open - ceil(x) for a whole `open`.
        Side::Buy => open_units.checked_sub(-(-numerator).div_euclid(denominator))?,
        Side::Sell => open_units.checked_add(numerator.div_euclid(denominator))?,
    };
    Some(i64::try_from(units).unwrap_or(if units < 0 { i64::MIN } else { i64::MAX }))
}

/// The key of a position's liquidation entry (see the module doc).
fn liquidation_key(p: &Position) -> i64 {
    let (open, margin, quantity) = (p.open_price.value(), p.margin.value(), p.quantity.value());
    if let Some(exact) = exact_liquidation_key(p.side, open, margin, quantity) {
        return exact;
    }
    let level = math::liquidation_level(p.side, open, margin, quantity);
    match p.side {
        Side::Buy => key(level).saturating_add(1),
        Side::Sell => key(level).saturating_sub(1),
    }
}

#[derive(Debug, Default, Clone)]
struct SideLevels {
    liquidation: Levels,
    stop_loss: Levels,
    take_profit: Levels,
}

#[derive(Debug, Default, Clone)]
struct AssetLevels {
    buy: SideLevels,
    sell: SideLevels,
}

#[derive(Debug, Default, Clone)]
pub struct TriggerIndex {
    assets: [AssetLevels; 3],
}

const LOWEST_ID: PositionId = PositionId(0);
const HIGHEST_ID: PositionId = PositionId(u64::MAX);

/// A quote's bid and ask as keys: computed once per tick for every index the tick asks
/// (positions, trailing stops, pending orders).
#[derive(Debug, Clone, Copy)]
pub(crate) struct QuoteKeys {
    pub(crate) bid: i64,
    pub(crate) ask: i64,
}

impl QuoteKeys {
    pub(crate) fn of(bid: Decimal, ask: Decimal) -> Self {
        Self {
            bid: key(bid),
            ask: key(ask),
        }
    }

    /// Whether `bid > ask` (the values these keys were made of), decided on the keys unless
    /// they tie (floors that differ order the exact values the same way).
    pub(crate) fn is_crossed(self, bid: Decimal, ask: Decimal) -> bool {
        match self.bid.cmp(&self.ask) {
            std::cmp::Ordering::Equal => bid > ask,
            order => order.is_gt(),
        }
    }
}

impl TriggerIndex {
    fn side_mut(&mut self, asset: Asset, side: Side) -> &mut SideLevels {
        let levels = &mut self.assets[asset.index()];
        match side {
            Side::Buy => &mut levels.buy,
            Side::Sell => &mut levels.sell,
        }
    }

    pub fn insert(&mut self, p: &Position) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if p.liquidation_price.is_some() {
            side.liquidation.insert(liquidation_key(p), id);
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.insert(key(level.value()), id);
        }
        if let Some(level) = p.take_profit {
            side.take_profit.insert(key(level.value()), id);
        }
    }

    pub fn remove(&mut self, p: &Position) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if p.liquidation_price.is_some() {
            side.liquidation.remove(liquidation_key(p), id);
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.remove(key(level.value()), id);
        }
        if let Some(level) = p.take_profit {
            side.take_profit.remove(key(level.value()), id);
        }
    }

    /// Re-keys only the stop-loss entry of `p`, whose stop-loss was `from` (a trailing stop
    /// moved it): the other levels, and the division behind the liquidation key, stay put.
    pub fn move_stop_loss(&mut self, p: &Position, from: Option<Price>) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if let Some(level) = from {
            side.stop_loss.remove(key(level.value()), id);
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.insert(key(level.value()), id);
        }
    }

    /// Positions of `asset` that a quote may trigger (a superset of those it does, see the
    /// module doc), sorted by id and without duplicates. Buys are valued at the bid, sells at
    /// the ask.
    pub fn candidates(&self, asset: Asset, quote: QuoteKeys) -> Vec<PositionId> {
        let levels = &self.assets[asset.index()];
        let QuoteKeys { bid, ask } = quote;
        let mut out = Vec::new();
        // A buy is hit when the bid falls to its liquidation or stop level, or rises to its
        // take-profit; a sell is the mirror image at the ask.
        let (buy, sell) = (&levels.buy, &levels.sell);
        buy.liquidation.at_or_above(bid, LOWEST_ID, &mut out);
        buy.stop_loss.at_or_above(bid, LOWEST_ID, &mut out);
        buy.take_profit.at_or_below(bid, HIGHEST_ID, &mut out);
        sell.liquidation.at_or_below(ask, HIGHEST_ID, &mut out);
        sell.stop_loss.at_or_below(ask, HIGHEST_ID, &mut out);
        sell.take_profit.at_or_above(ask, LOWEST_ID, &mut out);
        if out.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Number of indexed levels (for tests).
    pub fn level_count(&self) -> usize {
        self.assets
            .iter()
            .flat_map(|a| [&a.buy, &a.sell])
            .map(|s| s.liquidation.len() + s.stop_loss.len() + s.take_profit.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::{QuoteKeys, TriggerIndex, key};
    use bus::{Asset, Position, PositionId, Side, UserId};
    use rust_decimal::Decimal;

    fn eth_position(side: Side, open: &str, margin: &str, shown: &str) -> Position {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        Position {
            trailing_distance: None,
            id: PositionId(1),
            user_id: UserId(uuid::Uuid::nil()),
            asset: Asset::Eth,
            side,
            quantity: "11.479".parse().expect("quantity"),
            leverage: bus::Leverage::new(10).expect("leverage"),
            open_price: open.parse().expect("open"),
            margin: bus::Money::new(d(margin)).expect("margin"),
            liquidation_price: Some(shown.parse().expect("level")),
            stop_loss: None,
            take_profit: None,
            opened_at: 0,
        }
    }

    /// Prices in steps of 1e-9 across the exact level: every price the exact rule liquidates
    /// is a candidate, and candidates end within two key units of the level.
    #[test]
    fn liquidation_keys_agree_with_the_exact_level() {
        let cases = [
            // ETH buy 11.479 at 3145.67, margin 3610.92: level 2831.10252896593779945988...
            (Side::Buy, "3145.67", "3610.92", "2831.10", "2831.102528950"),
            // The mirror sell from 3145.57: level 3460.13747103406220054011...
            (
                Side::Sell,
                "3145.57",
                "3610.92",
                "3460.14",
                "3460.137471020",
            ),
        ];
        for (side, open, margin, shown, from) in cases {
            let p = eth_position(side, open, margin, shown);
            let mut index = TriggerIndex::default();
            index.insert(&p);
            let start: Decimal = from.parse().expect("start");
            let (mut liquidated, mut candidates) = (0, 0);
            for step in 0..40 {
                let price = start + Decimal::new(step, 9);
                let exact = crate::trading::is_liquidated(&p, price);
                let quote = QuoteKeys::of(price, price);
                let candidate = index.candidates(Asset::Eth, quote) == vec![p.id];
                assert!(candidate || !exact, "{side:?} at {price} missed");
                liquidated += usize::from(exact);
                candidates += usize::from(candidate);
            }
            assert!(
                (1..40).contains(&liquidated),
                "{side:?}: the range spans the level"
            );
            assert!(
                candidates - liquidated <= 20,
                "{side:?}: {candidates} vs {liquidated}"
            );
        }
    }

    proptest::proptest! {
        /// The integer key is `floor(level * 10^8)` of the exact level: decided with exact
        /// multiplications, `K / 10^8 <= level < (K + 1) / 10^8`.
        #[test]
        fn integer_liquidation_keys_floor_the_exact_level(
            buy: bool,
            open in 1i64..100_000_000_000,
            open_scale in 0u32..=8,
            margin in 1i64..10_000_000_000,
            quantity in 1i64..100_000_000,
            quantity_scale in 0u32..=8,
        ) {
            let side = if buy { Side::Buy } else { Side::Sell };
            let open = Decimal::new(open, open_scale);
            let margin = Decimal::new(margin, 2);
            let quantity = Decimal::new(quantity, quantity_scale);
            let k = super::exact_liquidation_key(side, open, margin, quantity).expect("fits");
            // A level beyond what a key holds saturates (and is no price a tick can carry).
            proptest::prop_assume!(k != i64::MIN && k != i64::MAX);
            let (at, above) = (Decimal::new(k, 8), Decimal::new(k + 1, 8));
            // Buy: level = open - m/q >= x  <=>  (open - x) * q >= m. Sell: level = open + m/q
            // >= x  <=>  (x - open) * q <= m.
            let (at_or_below_level, above_level) = match side {
                Side::Buy => ((open - at) * quantity >= margin, (open - above) * quantity < margin),
                Side::Sell => ((at - open) * quantity <= margin, (above - open) * quantity > margin),
            };
            proptest::prop_assert!(at_or_below_level && above_level, "{side:?} key {k}");
        }
    }

    #[test]
    fn crossed_quotes_are_decided_exactly() {
        let crossed = |bid: &str, ask: &str| {
            let (bid, ask) = (bid.parse().expect("bid"), ask.parse().expect("ask"));
            QuoteKeys::of(bid, ask).is_crossed(bid, ask)
        };
        assert!(crossed("100.01", "100.00"));
        assert!(!crossed("100.00", "100.00"));
        assert!(!crossed("99.99", "100.00"));
        // Equal keys, different values beyond 8 decimals.
        assert!(crossed("1.000000001", "1.0000000001"));
        assert!(!crossed("1.0000000001", "1.000000001"));
    }

    #[test]
    fn keys_floor_to_eight_decimals_and_saturate() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert_eq!(key(d("65000.50")), 6_500_050_000_000);
        assert_eq!(key(d("0.000000019")), 1);
        assert_eq!(key(d("-0.000000011")), -2);
        assert_eq!(key(d("100000000000000000000")), i64::MAX);
    }
}
