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
//! not the rounded price shown), widened by one key unit towards the open price: the division
//! behind the level is rounded at 28 significant digits, far below 1e-8, so the widened key
//! keeps every position that [`crate::math::is_liquidated`] (the exact re-check, by
//! multiplication) liquidates among the candidates.

use std::collections::BTreeSet;
use std::ops::Bound;

use bus::{Asset, Position, PositionId, Price, Side};
use rust_decimal::Decimal;

use crate::math;

type Levels = BTreeSet<(i64, PositionId)>;

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

/// `floor(value * 10^8)`, saturating at the bounds of `i64`.
pub(crate) fn key(value: Decimal) -> i64 {
    let mantissa = value.mantissa();
    let scale = value.scale();
    let scaled = if scale <= KEY_DECIMALS {
        mantissa.saturating_mul(POW10[(KEY_DECIMALS - scale) as usize])
    } else {
        mantissa.div_euclid(POW10[(scale - KEY_DECIMALS) as usize])
    };
    i64::try_from(scaled).unwrap_or(if scaled < 0 { i64::MIN } else { i64::MAX })
}

/// The key of a position's liquidation entry: its exact level, widened by one unit towards
/// the open price (see the module doc).
fn liquidation_key(p: &Position) -> i64 {
    let level = math::liquidation_level(
        p.side,
        p.open_price.value(),
        p.margin.value(),
        p.quantity.value(),
    );
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

/// Ids of entries whose key is at or above `price`. The common case, nothing crossed, costs
/// one look at the highest entry. `lowest` is the smallest id (generic over the id type: the
/// pending-order and trailing-stop indexes use the same walk).
pub(crate) fn at_or_above<T: Ord + Copy>(
    levels: &BTreeSet<(i64, T)>,
    price: i64,
    lowest: T,
    out: &mut Vec<T>,
) {
    if levels.last().is_some_and(|&(highest, _)| highest >= price) {
        out.extend(
            levels
                .range((Bound::Included((price, lowest)), Bound::Unbounded))
                .map(|&(_, id)| id),
        );
    }
}

/// Ids of entries whose key is at or below `price`; nothing crossed costs one look at the
/// lowest entry. `highest` is the largest id.
pub(crate) fn at_or_below<T: Ord + Copy>(
    levels: &BTreeSet<(i64, T)>,
    price: i64,
    highest: T,
    out: &mut Vec<T>,
) {
    if levels.first().is_some_and(|&(lowest, _)| lowest <= price) {
        out.extend(
            levels
                .range((Bound::Unbounded, Bound::Included((price, highest))))
                .map(|&(_, id)| id),
        );
    }
}

/// Whether `bid > ask`, decided on the integer keys unless they tie (floors that differ
/// order the exact values the same way).
pub fn is_crossed(bid: Decimal, ask: Decimal) -> bool {
    match key(bid).cmp(&key(ask)) {
        std::cmp::Ordering::Equal => bid > ask,
        order => order.is_gt(),
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
            side.liquidation.insert((liquidation_key(p), id));
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.insert((key(level.value()), id));
        }
        if let Some(level) = p.take_profit {
            side.take_profit.insert((key(level.value()), id));
        }
    }

    pub fn remove(&mut self, p: &Position) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if p.liquidation_price.is_some() {
            side.liquidation.remove(&(liquidation_key(p), id));
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.remove(&(key(level.value()), id));
        }
        if let Some(level) = p.take_profit {
            side.take_profit.remove(&(key(level.value()), id));
        }
    }

    /// Re-keys only the stop-loss entry of `p`, whose stop-loss was `from` (a trailing stop
    /// moved it): the other levels, and the division behind the liquidation key, stay put.
    pub fn move_stop_loss(&mut self, p: &Position, from: Option<Price>) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if let Some(level) = from {
            side.stop_loss.remove(&(key(level.value()), id));
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.insert((key(level.value()), id));
        }
    }

    /// Positions of `asset` that a quote of `bid`/`ask` may trigger (a superset of those it
    /// does, see the module doc), sorted by id and without duplicates. Buys are valued at the
    /// bid, sells at the ask.
    pub fn candidates(&self, asset: Asset, bid: Decimal, ask: Decimal) -> Vec<PositionId> {
        let levels = &self.assets[asset.index()];
        let (bid, ask) = (key(bid), key(ask));
        let mut out = Vec::new();
        // A buy is hit when the bid falls to its liquidation or stop level, or rises to its
        // take-profit; a sell is the mirror image at the ask.
        at_or_above(&levels.buy.liquidation, bid, LOWEST_ID, &mut out);
        at_or_above(&levels.buy.stop_loss, bid, LOWEST_ID, &mut out);
        at_or_below(&levels.buy.take_profit, bid, HIGHEST_ID, &mut out);
        at_or_below(&levels.sell.liquidation, ask, HIGHEST_ID, &mut out);
        at_or_below(&levels.sell.stop_loss, ask, HIGHEST_ID, &mut out);
        at_or_above(&levels.sell.take_profit, ask, LOWEST_ID, &mut out);
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
    use super::{TriggerIndex, key};
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
                let candidate = index.candidates(Asset::Eth, price, price) == vec![p.id];
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

    #[test]
    fn crossed_quotes_are_decided_exactly() {
        let d = |s: &str| s.parse::<Decimal>().expect("decimal");
        assert!(super::is_crossed(d("100.01"), d("100.00")));
        assert!(!super::is_crossed(d("100.00"), d("100.00")));
        assert!(!super::is_crossed(d("99.99"), d("100.00")));
        // Equal keys, different values beyond 8 decimals.
        assert!(super::is_crossed(d("1.000000001"), d("1.0000000001")));
        assert!(!super::is_crossed(d("1.0000000001"), d("1.000000001")));
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
