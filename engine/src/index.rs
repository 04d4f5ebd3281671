//! Ordered trigger indexes, so a price tick costs O(log n + triggered), not a scan.
//!
//! Per asset and side, three ordered sets of `(level, position id)`: liquidation, stop-loss and
//! take-profit levels. A tick asks each set only for the range of levels the new price crossed.
//! The indexes are derived from the open positions and rebuilt on restore; they are never
//! serialised.

use std::collections::BTreeSet;
use std::ops::Bound;

use bus::{Asset, Position, PositionId, Side};
use rust_decimal::Decimal;

type Levels = BTreeSet<(Decimal, PositionId)>;

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

/// Ids of entries whose level is at or above `price`.
fn at_or_above(levels: &Levels, price: Decimal, out: &mut Vec<PositionId>) {
    out.extend(
        levels
            .range((Bound::Included((price, LOWEST_ID)), Bound::Unbounded))
            .map(|&(_, id)| id),
    );
}

/// Ids of entries whose level is at or below `price`.
fn at_or_below(levels: &Levels, price: Decimal, out: &mut Vec<PositionId>) {
    out.extend(
        levels
            .range((Bound::Unbounded, Bound::Included((price, HIGHEST_ID))))
            .map(|&(_, id)| id),
    );
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
        if let Some(level) = p.liquidation_price {
            side.liquidation.insert((level.value(), id));
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.insert((level.value(), id));
        }
        if let Some(level) = p.take_profit {
            side.take_profit.insert((level.value(), id));
        }
    }

    pub fn remove(&mut self, p: &Position) {
        let id = p.id;
        let side = self.side_mut(p.asset, p.side);
        if let Some(level) = p.liquidation_price {
            side.liquidation.remove(&(level.value(), id));
        }
        if let Some(level) = p.stop_loss {
            side.stop_loss.remove(&(level.value(), id));
        }
        if let Some(level) = p.take_profit {
            side.take_profit.remove(&(level.value(), id));
        }
    }

    /// Positions of `asset` that a quote of `bid`/`ask` triggers (any reason), sorted by id
    /// and without duplicates. Buys are valued at the bid, sells at the ask.
    pub fn triggered(&self, asset: Asset, bid: Decimal, ask: Decimal) -> Vec<PositionId> {
        let levels = &self.assets[asset.index()];
        let mut out = Vec::new();
        // A buy is hit when the bid falls to its liquidation or stop level, or rises to its
        // take-profit; a sell is the mirror image at the ask.
        at_or_above(&levels.buy.liquidation, bid, &mut out);
        at_or_above(&levels.buy.stop_loss, bid, &mut out);
        at_or_below(&levels.buy.take_profit, bid, &mut out);
        at_or_below(&levels.sell.liquidation, ask, &mut out);
        at_or_below(&levels.sell.stop_loss, ask, &mut out);
        at_or_above(&levels.sell.take_profit, ask, &mut out);
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
