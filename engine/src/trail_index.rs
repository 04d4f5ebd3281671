//! The index of trailing stops: which positions' stops a tick may move, in O(log n) per moved
//! position (the rules are in [`crate::trailing`]).
//!
//! A buy's stop moves when `bid - distance > stopLoss`, i.e. when `stopLoss + distance < bid`:
//! buys are keyed by `stopLoss + distance` (a missing stop counts as 0) and a tick takes the
//! keys at or below the bid's. A sell's moves when `ask + distance < stopLoss`, i.e. when
//! `stopLoss - distance > ask`: keyed by `stopLoss - distance`, a tick takes the keys at or
//! above the ask's. Keys are floored 1e-8 fixed point like [`crate::index`], so a candidate
//! is re-checked exactly; a stop exactly at `bid - distance` is a candidate that stays.

use bus::{Asset, Position, PositionId, Price, Side};
use rust_decimal::Decimal;

use crate::index::{QuoteKeys, key};
use crate::key_set::KeySet;

type Keys = KeySet<PositionId>;

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
            self.keys_mut(p).insert(k, p.id);
        }
    }

    pub fn remove(&mut self, p: &Position) {
        if let Some(k) = trail_key(p) {
            self.keys_mut(p).remove(k, p.id);
        }
    }

    /// Trailing positions of `asset` whose stop a quote may move.
    pub fn candidates(&self, asset: Asset, quote: QuoteKeys) -> Vec<PositionId> {
        let mut out = Vec::new();
        let i = asset.index();
        self.buy[i].at_or_below(quote.bid, PositionId(u64::MAX), &mut out);
        self.sell[i].at_or_above(quote.ask, PositionId(0), &mut out);
        out
    }

    pub fn len(&self) -> usize {
        self.buy.iter().chain(&self.sell).map(KeySet::len).sum()
    }
}
