//! The alerts worker's ordered index, so a quote costs O(log n + fired), not a scan of every
//! active alert (the engine's trigger index idea, `engine::index`).
//!
//! Per asset, two ordered sets of `(level, alert id)`: "above" alerts fire when the ask
//! reaches their level (`ask >= level`), "below" alerts when the bid does (`bid <= level`).
//! A quote that fires nothing costs one look at the lowest "above" and the highest "below"
//! level. Levels are exact `Decimal`s (alerts are few per quote; no fixed-point keys needed).

use std::collections::{BTreeSet, HashMap};
use std::ops::Bound;

use bus::{Asset, MarketQuote, Price};
use rust_decimal::Decimal;

use super::Direction;

/// An alert's id (the `alerts.id` column).
pub type AlertId = i64;

type Levels = BTreeSet<(Decimal, AlertId)>;

#[derive(Debug, Default, Clone)]
struct AssetLevels {
    above: Levels,
    below: Levels,
}

/// One active alert as the index keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Armed {
    pub asset: Asset,
    pub direction: Direction,
    pub level: Price,
}

/// One alert a quote crossed, with the quote price that crossed it (the ask for "above",
/// the bid for "below").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crossed {
    pub id: AlertId,
    pub price: Price,
    /// What it was armed as (to arm it again if marking it triggered fails).
    pub armed: Armed,
}

#[derive(Debug, Default, Clone)]
pub struct AlertIndex {
    assets: [AssetLevels; 3],
    armed: HashMap<AlertId, Armed>,
}

impl AlertIndex {
    pub fn len(&self) -> usize {
        self.armed.len()
    }

    pub fn is_empty(&self) -> bool {
        self.armed.is_empty()
    }

    pub fn contains(&self, id: AlertId) -> bool {
        self.armed.contains_key(&id)
    }

    fn levels(&mut self, asset: Asset, direction: Direction) -> &mut Levels {
        let a = &mut self.assets[asset.index()];
        match direction {
            Direction::Above => &mut a.above,
            Direction::Below => &mut a.below,
        }
    }

    /// Arms an alert; arming one that is already armed changes nothing.
    pub fn insert(&mut self, id: AlertId, alert: Armed) {
        if self.armed.insert(id, alert).is_none() {
            self.levels(alert.asset, alert.direction)
                .insert((alert.level.value(), id));
        }
    }

    /// Disarms an alert (cancelled, or fired by someone else); unknown ids are ignored.
    pub fn remove(&mut self, id: AlertId) -> Option<Armed> {
        let alert = self.armed.remove(&id)?;
        self.levels(alert.asset, alert.direction)
            .remove(&(alert.level.value(), id));
        Some(alert)
    }

    /// Takes out every alert `quote` crosses (each fires once: it leaves the index here).
    pub fn take_crossed(&mut self, quote: &MarketQuote) -> Vec<Crossed> {
        let (bid, ask) = (quote.bid.value(), quote.ask.value());
        let levels = &mut self.assets[quote.asset.index()];
        let mut hit: Vec<((Decimal, AlertId), Price)> = Vec::new();
        if levels
            .above
            .first()
            .is_some_and(|&(lowest, _)| lowest <= ask)
        {
            let upto = (Bound::Unbounded, Bound::Included((ask, AlertId::MAX)));
            hit.extend(levels.above.range(upto).map(|k| (*k, quote.ask)));
            for (key, _) in &hit {
                levels.above.remove(key);
            }
        }
        let from = hit.len();
        if levels
            .below
            .last()
            .is_some_and(|&(highest, _)| highest >= bid)
        {
            let down_to = (Bound::Included((bid, AlertId::MIN)), Bound::Unbounded);
            hit.extend(levels.below.range(down_to).map(|k| (*k, quote.bid)));
            for (key, _) in &hit[from..] {
                levels.below.remove(key);
            }
        }
        hit.into_iter()
            .filter_map(|((_, id), price)| {
                let armed = self.armed.remove(&id)?;
                Some(Crossed { id, price, armed })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Price {
        s.parse().expect("price")
    }

    fn quote(bid: &str, ask: &str) -> MarketQuote {
        MarketQuote {
            asset: Asset::Btc,
            bid: p(bid),
            ask: p(ask),
            ts: 1,
            simulated: false,
        }
    }

    fn armed(direction: Direction, level: &str) -> Armed {
        Armed {
            asset: Asset::Btc,
            direction,
            level: p(level),
        }
    }

    #[test]
    fn above_fires_on_the_ask_at_the_level_and_not_a_tick_before() {
        let mut index = AlertIndex::default();
        index.insert(1, armed(Direction::Above, "65000.00"));
        // The bid is at the level but the ask is a tick below it: nothing.
        assert!(
            index
                .take_crossed(&quote("64999.00", "64999.99"))
                .is_empty()
        );
        let fired = index.take_crossed(&quote("64999.00", "65000.00"));
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].id, fired[0].price), (1, p("65000.00")));
        assert_eq!(fired[0].armed, armed(Direction::Above, "65000.00"));
        assert!(
            index
                .take_crossed(&quote("70000.00", "70001.00"))
                .is_empty()
        );
        assert!(index.is_empty());
    }

    #[test]
    fn below_fires_on_the_bid_at_the_level_and_not_a_tick_before() {
        let mut index = AlertIndex::default();
        index.insert(7, armed(Direction::Below, "60000.00"));
        assert!(
            index
                .take_crossed(&quote("60000.01", "59000.00"))
                .is_empty()
        );
        let fired = index.take_crossed(&quote("59990.00", "59991.00"));
        assert_eq!(fired.len(), 1);
        assert_eq!((fired[0].id, fired[0].price), (7, p("59990.00")));
        assert!(index.take_crossed(&quote("1.00", "1.01")).is_empty());
    }

    #[test]
    fn only_crossed_levels_fire_and_removed_ones_never_do() {
        let mut index = AlertIndex::default();
        for (id, level) in [(1, "100"), (2, "200"), (3, "300"), (4, "200")] {
            index.insert(id, armed(Direction::Above, level));
        }
        index.insert(5, armed(Direction::Below, "50"));
        assert!(index.remove(4).is_some());
        assert!(index.remove(4).is_none());
        let mut ids: Vec<_> = index
            .take_crossed(&quote("199", "200"))
            .iter()
            .map(|c| c.id)
            .collect();
        ids.sort_unstable();
        assert_eq!(ids, vec![1, 2]);
        assert_eq!(index.len(), 2);
        // Another asset's quote touches nothing.
        let mut eth = quote("1", "1000");
        eth.asset = Asset::Eth;
        assert!(index.take_crossed(&eth).is_empty());
        assert_eq!(index.len(), 2);
    }
}
