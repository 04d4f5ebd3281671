//! Trailing stops: a position's stop-loss follows the market at a fixed distance, only in the
//! trader's favour (rules in [`crate::trading`]), and the index that finds the stops a tick
//! moves in O(log n) per moved position.
//!
//! A buy's stop moves when `bid - distance > stopLoss`, i.e. when `stopLoss + distance < bid`:
//! buys are keyed by `stopLoss + distance` (a missing stop counts as 0) and a tick takes the
//! keys at or below the bid's. A sell's moves when `ask + distance < stopLoss`, i.e. when
//! `stopLoss - distance > ask`: keyed by `stopLoss - distance`, a tick takes the keys at or
//! above the ask's. Keys are floored 1e-8 fixed point like [`crate::index`], so a candidate
//! is re-checked exactly; a stop exactly at `bid - distance` is a candidate that stays.

use std::collections::BTreeSet;

use bus::{Asset, Position, PositionId, Price, PriceTick, Side};
use rust_decimal::Decimal;

use crate::index::{at_or_above, at_or_below, key};
use crate::trading::Engine;

type Keys = BTreeSet<(i64, PositionId)>;

#[derive(Debug, Default, Clone)]
pub struct TrailIndex {
    buy: [Keys; 3],
    sell: [Keys; 3],
}

fn trail_key(p: &Position) -> Option<i64> {
    let distance = p.trailing_distance?.value();
    Some(match p.side {
        Side::Buy => key(p.stop_loss.map_or(Decimal::ZERO, Price::value) + distance),
        Side::Sell => p
            .stop_loss
            .map_or(i64::MAX, |sl| key(sl.value() - distance)),
    })
}

impl TrailIndex {
    fn keys_mut(&mut self, p: &Position) -> &mut Keys {
        match p.side {
            Side::Buy => &mut self.buy[p.asset.index()],
            Side::Sell => &mut self.sell[p.asset.index()],
        }
    }

    pub fn insert(&mut self, p: &Position) {
        if let Some(k) = trail_key(p) {
            self.keys_mut(p).insert((k, p.id));
        }
    }

    pub fn remove(&mut self, p: &Position) {
        if let Some(k) = trail_key(p) {
            self.keys_mut(p).remove(&(k, p.id));
        }
    }

    /// Trailing positions of `asset` whose stop a quote of `bid`/`ask` may move.
    pub fn candidates(&self, asset: Asset, bid: Decimal, ask: Decimal) -> Vec<PositionId> {
        let mut out = Vec::new();
        at_or_below(
            &self.buy[asset.index()],
            key(bid),
            PositionId(u64::MAX),
            &mut out,
        );
        at_or_above(&self.sell[asset.index()], key(ask), PositionId(0), &mut out);
        out
    }

    pub fn len(&self) -> usize {
        self.buy.iter().chain(&self.sell).map(BTreeSet::len).sum()
    }
}

/// The stop-loss a trail of `distance` asks for at `quote`: a buy `bid - distance` (none at
/// or below zero), a sell `ask + distance`.
pub(crate) fn trail_level(side: Side, quote: &PriceTick, distance: Price) -> Option<Price> {
    let level = match side {
        Side::Buy => quote.bid.value() - distance.value(),
        Side::Sell => quote.ask.value() + distance.value(),
    };
    Price::new(level).ok()
}

/// Whether `candidate` is strictly in the trader's favour of `current` (a buy's higher, a
/// sell's lower); any level beats none.
pub(crate) fn tighter(side: Side, current: Option<Price>, candidate: Price) -> bool {
    current.is_none_or(|c| match side {
        Side::Buy => candidate > c,
        Side::Sell => candidate < c,
    })
}

/// A stop-loss `given` by the trader combined with a trail at `quote`: the tighter of the two,
/// and whether the trail set it.
pub(crate) fn trailed_stop(
    side: Side,
    quote: &PriceTick,
    given: Option<Price>,
    distance: Option<Price>,
) -> (Option<Price>, bool) {
    match distance.and_then(|d| trail_level(side, quote, d)) {
        Some(level) if tighter(side, given, level) => (Some(level), true),
        _ => (given, false),
    }
}

impl Engine {
    /// Moves the trailing stops a tick favours (after the tick's closes): O(log n) each.
    pub(crate) fn move_trailing_stops(&mut self, tick: &PriceTick) {
        let candidates = self
            .trails
            .candidates(tick.asset, tick.bid.value(), tick.ask.value());
        for id in candidates {
            let Some(p) = self.positions.get_mut(&id) else {
                continue;
            };
            let Some(level) = p
                .trailing_distance
                .and_then(|d| trail_level(p.side, tick, d))
            else {
                continue;
            };
            if !tighter(p.side, p.stop_loss, level) {
                continue;
            }
            self.triggers.remove(p);
            self.trails.remove(p);
            p.stop_loss = Some(level);
            self.triggers.insert(p);
            self.trails.insert(p);
            self.trailed.insert(id);
        }
    }
}
